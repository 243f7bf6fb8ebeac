//! Budgets through the real client: reservations, rejections before sending,
//! alerts once per threshold, periods, released reservations, async invocations
//! holding their estimate until they settle.

use crate::support::fake_sagemaker::{FakeSageMaker, FakeVariant};
use crate::support::receipts::Receipts;
use crate::support::{NoPrices, manual_clock, submit_async};
use aws_sdk_sagemakerruntime::primitives::Blob;
use aws_smithy_async::test_util::ManualTimeSource;
use aws_smithy_async::time::SharedTimeSource;
use rust_decimal::Decimal;
use sagemeter::billing::{SettledBefore, SettledBy, UsageCharges};
use sagemeter::budget::{Budget, BudgetPeriod, BudgetScope, Estimate};
use sagemeter::client::AsyncCompletion;
use sagemeter::endpoint::{EndpointProfile, VariantProfile};
use sagemeter::pricing::PriceKey;
use sagemeter::{Client, ClientBuilder, Error};
use std::sync::{Arc, Mutex};
use std::time::{Duration, UNIX_EPOCH};

fn dec(s: &str) -> Decimal {
    s.parse().unwrap()
}

async fn fake() -> FakeSageMaker {
    let fake = FakeSageMaker::start().await;
    fake.add_endpoint(
        "rt",
        vec![FakeVariant::instance("AllTraffic", "ml.m5.xlarge", 1)],
    );
    fake
}

/// Every call costs exactly 0.001 USD: compute and data are free of charge and
/// the endpoint has a per-inference fee of 1 USD per 1,000 calls.
async fn one_tenth_of_a_cent_per_call(fake: &FakeSageMaker) -> ClientBuilder {
    let r = "us-east-1".to_owned();
    Client::builder(&fake.sdk_config().await)
        .free_of_charge(PriceKey::hosting(&r, "ml.m5.xlarge"))
        .free_of_charge(PriceKey::DataIn { region: r.clone() })
        .free_of_charge(PriceKey::DataOut { region: r.clone() })
        .usage_charges("rt", UsageCharges::default().per_1000_calls(Decimal::ONE))
}

/// An enforced budget whose estimate is exactly one call (0.001 USD).
fn capped(scope: BudgetScope, period: BudgetPeriod, limit_usd: &str) -> Budget {
    Budget::enforce(scope, period, dec(limit_usd))
        .unwrap()
        .estimate(Estimate::Fixed { usd: dec("0.001") })
        .unwrap()
}

/// What the client's (first) budget has spent, and what it holds.
fn spent_held(client: &Client) -> (Decimal, Decimal) {
    let status = &client.meter().budget_status()[0];
    (status.spent_usd, status.reserved_usd)
}

/// What the client's (first) budget has spent, what it holds, and how many of
/// its calls were not fully priced.
fn spent_held_unpriced(client: &Client) -> (Decimal, Decimal, u64) {
    let status = &client.meter().budget_status()[0];
    (status.spent_usd, status.reserved_usd, status.unpriced_calls)
}

async fn with_budget(fake: &FakeSageMaker, budget: Budget) -> Client {
    one_tenth_of_a_cent_per_call(fake)
        .await
        .budget(budget)
        .build()
        .unwrap()
}

/// A call to `rt`: its cost.
fn call(client: &Client) -> impl std::future::Future<Output = sagemeter::Result<Decimal>> + use<> {
    cost_of(rt_request(client))
}

/// A call to `rt` tagged `key=value`: its cost.
fn tagged_call(
    client: &Client,
    key: &str,
    value: &str,
) -> impl std::future::Future<Output = sagemeter::Result<Decimal>> + use<> {
    cost_of(rt_request(client).tag(key, value))
}

fn rt_request(client: &Client) -> sagemeter::client::InvokeEndpoint {
    client
        .invoke_endpoint()
        .endpoint_name("rt")
        .body(Blob::new("{}"))
}

async fn cost_of(request: sagemeter::client::InvokeEndpoint) -> sagemeter::Result<Decimal> {
    request.send().await.map(|r| r.cost().cost_usd)
}

/// A refused call has no receipt, so no sink sees it: it is counted on its own.
#[tokio::test]
async fn a_refused_call_is_counted_in_the_budget_refused_metric() {
    use metrics_util::debugging::DebuggingRecorder;
    // A local recorder sees this thread's events (a current-thread runtime).
    let recorder = DebuggingRecorder::new();
    let _guard = metrics::set_default_local_recorder(&recorder);
    let fake = fake().await;
    // 0.002 USD: two calls of 0.001 fit, the third and fourth are refused.
    let client = with_budget(
        &fake,
        capped(BudgetScope::endpoint("rt"), BudgetPeriod::Day, "0.002"),
    )
    .await;
    for _ in 0..2 {
        call(&client).await.unwrap();
    }
    for _ in 0..2 {
        assert!(matches!(
            call(&client).await,
            Err(Error::BudgetExceeded { .. })
        ));
    }
    assert_eq!(
        crate::support::counter_values(&recorder, "sagemeter_budget_refused_total"),
        [(vec![("reason".to_owned(), "exceeded".to_owned())], 2)]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn enforced_budget_never_overshoots_under_250_concurrent_calls() {
    let fake = fake().await;
    let budget = capped(BudgetScope::endpoint("rt"), BudgetPeriod::Day, "0.1");
    let client = with_budget(&fake, budget).await;

    let tasks: Vec<_> = (0..250).map(|_| tokio::spawn(call(&client))).collect();
    let (mut ok, mut rejected) = (0, 0);
    for t in tasks {
        match t.await.unwrap() {
            Ok(cost) => {
                assert_eq!(cost, dec("0.001"));
                ok += 1;
            }
            Err(Error::BudgetExceeded {
                limit, estimate, ..
            }) => {
                // What did not fit: the fixed estimate of a call.
                assert_eq!((limit, estimate), (dec("0.1"), dec("0.001")));
                rejected += 1;
            }
            Err(other) => panic!("unexpected error {other:?}"),
        }
    }
    // 0.1 / 0.001 = exactly 100 calls fit.
    assert_eq!((ok, rejected), (100, 150));
    assert_eq!(
        fake.invocations(),
        100,
        "rejected calls never reach the server"
    );
    assert_eq!(client.meter().totals().client_usd, dec("0.1"));
    let status = &client.meter().budget_status()[0];
    assert_eq!(status.spent_usd, dec("0.1"));
    assert_eq!(status.reserved_usd, Decimal::ZERO);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn recent_max_estimate_keeps_overshoot_within_the_estimation_error() {
    let fake = fake().await;
    // Real costs are latency-based and vary; the estimate is the max of recent calls.
    // Each call is billed its own time (busy time) of at least 5 ms: 300 calls cost
    // at least 300 × 0.005 s × 0.23 / 3,600 s = $0.0000958, past the limit however
    // fast the machine. (Shared among calls in flight, as processor sharing bills
    // them, the run's cost is its wall time's: a fast machine stayed under it.)
    *fake.state.latency.lock().unwrap() = std::time::Duration::from_millis(5);
    let r = "us-east-1".to_owned();
    let limit = dec("0.00005");
    let budget = Budget::enforce(BudgetScope::Client, BudgetPeriod::Day, limit)
        .unwrap()
        .estimate(Estimate::RecentMax {
            calls: 20,
            initial_usd: dec("0.000001"),
        })
        .unwrap();
    let client = Client::builder(&fake.sdk_config().await)
        .price_override(PriceKey::hosting(&r, "ml.m5.xlarge"), dec("0.23"))
        .price_override(PriceKey::DataIn { region: r.clone() }, dec("0.016"))
        .price_override(PriceKey::DataOut { region: r.clone() }, dec("0.016"))
        .allocation(sagemeter::billing::Allocation::BusyTime)
        .budget(budget)
        .build()
        .unwrap();
    let tasks: Vec<_> = (0..300).map(|_| tokio::spawn(call(&client))).collect();
    let mut costs = Vec::new();
    for t in tasks {
        if let Ok(cost) = t.await.unwrap() {
            costs.push(cost);
        }
    }
    let spent: Decimal = costs.iter().copied().sum();
    let worst_call = costs.iter().copied().max().unwrap();
    assert!(
        spent <= limit + worst_call * Decimal::from(64),
        "spent {spent} overshoots {limit} by more than the calls in flight could"
    );
    assert!(fake.invocations() < 300, "the budget stopped some calls");
}

#[tokio::test]
async fn alerts_fire_once_per_threshold_per_period() {
    let fake = fake().await;
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = seen.clone();
    let budget = Budget::alert(BudgetScope::Client, BudgetPeriod::Day, dec("0.01"))
        .unwrap()
        .on_alert(move |a| {
            sink.lock()
                .unwrap()
                .push((a.threshold_percent, a.spent_usd))
        });
    let client = with_budget(&fake, budget).await;
    for _ in 0..15 {
        call(&client).await.expect("alerting budgets never reject");
    }
    // 0.001 per call against 0.01: 50 % at the 5th call, 80 % at the 8th, 100 % at the 10th.
    assert_eq!(
        *seen.lock().unwrap(),
        vec![(50, dec("0.005")), (80, dec("0.008")), (100, dec("0.010"))]
    );
}

#[tokio::test]
async fn a_new_period_starts_with_nothing_spent() {
    let fake = fake().await;
    let time = ManualTimeSource::new(UNIX_EPOCH + Duration::from_secs(1_800_000_000));
    let budget = capped(BudgetScope::Client, BudgetPeriod::Hour, "0.002");
    let client = one_tenth_of_a_cent_per_call(&fake)
        .await
        .time_source(SharedTimeSource::new(time.clone()))
        .budget(budget)
        .build()
        .unwrap();
    call(&client).await.unwrap();
    call(&client).await.unwrap();
    let err = call(&client).await.unwrap_err();
    assert!(
        err.to_string()
            .contains("budget exceeded for client per hour"),
        "{err}"
    );
    time.advance(Duration::from_secs(3600));
    call(&client).await.expect("a new hour has room again");
}

#[tokio::test]
async fn a_failed_call_releases_its_reservation() {
    let fake = fake().await;
    let budget = capped(BudgetScope::endpoint("rt"), BudgetPeriod::Day, "0.001");
    let client = with_budget(&fake, budget).await;
    *fake.state.invoke_error.lock().unwrap() = Some((400, "ValidationError".into()));
    assert!(matches!(
        call(&client).await,
        Err(Error::Invoke { cost: None, .. })
    ));
    assert_eq!(spent_held(&client), (Decimal::ZERO, Decimal::ZERO));
    *fake.state.invoke_error.lock().unwrap() = None;
    call(&client)
        .await
        .expect("the released reservation left room");
}

#[tokio::test]
async fn a_cancelled_call_releases_its_reservation() {
    let fake = fake().await;
    *fake.state.latency.lock().unwrap() = Duration::from_secs(5);
    let budget = capped(BudgetScope::Client, BudgetPeriod::Day, "0.001");
    let client = with_budget(&fake, budget).await;
    let pending = tokio::spawn(call(&client));
    // The request has reached the model (reserved before sending).
    fake.wait_for_invocations(1).await;
    assert_eq!(client.meter().budget_status()[0].reserved_usd, dec("0.001"));
    pending.abort();
    let _ = pending.await;
    // Released once the dropped call's receipt is made (in the background):
    // nothing stays reserved. The model ran, but the call got no successful
    // (HTTP 2XX) answer before it was dropped: no inference is charged, and its
    // compute and data are free here, so it spent $0.
    let deadline = std::time::Instant::now() + Duration::from_secs(4);
    while !client.meter().budget_status()[0].reserved_usd.is_zero() {
        assert!(std::time::Instant::now() < deadline, "never released");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(client.meter().budget_status()[0].spent_usd, Decimal::ZERO);
}

/// A budget for each value of a tag: every tenant has its own limit, begun when
/// its first call comes, and is refused on its own.
#[tokio::test]
async fn a_budget_for_each_tag_value_gives_every_value_its_own_limit() {
    let fake = fake().await;
    // Room for one call of 0.001 USD (the fixed estimate) per tenant a day: the
    // first call's spend (above $0) plus a second estimate is past 0.001.
    let budget = Budget::enforce(
        BudgetScope::each_tag_value("tenant"),
        BudgetPeriod::Day,
        dec("0.001"),
    )
    .unwrap()
    .estimate(Estimate::Fixed { usd: dec("0.001") })
    .unwrap();
    let client = with_budget(&fake, budget).await;
    assert!(client.meter().budget_status().is_empty(), "no tenant yet");
    let tenant = |name: &str| tagged_call(&client, "tenant", name);
    tenant("acme").await.unwrap();
    match tenant("acme").await {
        Err(Error::BudgetExceeded { scope, limit, .. }) => {
            assert_eq!(scope, BudgetScope::tag("tenant", "acme"));
            assert_eq!(limit, dec("0.001"));
        }
        other => panic!("expected acme's refusal, got {other:?}"),
    }
    // Another tenant's calls are held to their own limit, not acme's.
    let initech = tenant("initech").await.unwrap();
    assert!(tenant("initech").await.is_err());
    // A call without the tag is under no tenant's budget.
    call(&client).await.unwrap();
    call(&client).await.unwrap();
    let status = client.meter().budget_status();
    let scopes: Vec<_> = status.iter().map(|s| s.scope.clone()).collect();
    assert_eq!(
        scopes,
        [
            BudgetScope::tag("tenant", "acme"),
            BudgetScope::tag("tenant", "initech")
        ]
    );
    assert_eq!(status[1].spent_usd, initech);
    assert_eq!(status[1].limit_usd, dec("0.001"));
}

#[tokio::test]
async fn a_tag_budget_counts_only_tagged_calls() {
    let fake = fake().await;
    let budget = Budget::enforce(
        BudgetScope::tag("team", "search"),
        BudgetPeriod::Day,
        dec("0.001"),
    )
    .unwrap()
    .estimate(Estimate::Fixed { usd: dec("0.001") })
    .unwrap();
    let client = with_budget(&fake, budget).await;
    let tagged = || tagged_call(&client, "team", "search");
    tagged().await.unwrap();
    // Which budget refused, to match on: the tag's, for the day, this process's.
    match tagged().await {
        Err(Error::BudgetExceeded {
            scope,
            period,
            fleet_wide,
            ..
        }) => {
            assert_eq!(scope, BudgetScope::tag("team", "search"));
            assert_eq!((period, fleet_wide), (BudgetPeriod::Day, false));
        }
        other => panic!("expected the tag budget's refusal, got {other:?}"),
    }
    // Untagged calls are outside the budget.
    call(&client).await.unwrap();
    call(&client).await.unwrap();
    // Tagged on the SDK's own builder, the same: refused, the budget being spent.
    use sagemeter::SendMeteredExt;
    let sdk = aws_sdk_sagemakerruntime::Client::new(&fake.sdk_config().await);
    let request = || {
        sdk.invoke_endpoint()
            .endpoint_name("rt")
            .body(Blob::new("{}"))
    };
    let refused = request()
        .send_metered_tagged(client.meter(), [("team", "search")])
        .await;
    assert!(
        matches!(refused, Err(Error::BudgetExceeded { .. })),
        "{refused:?}"
    );
    let other = request()
        .send_metered_tagged(client.meter(), [("team", "ads")])
        .await
        .unwrap();
    assert_eq!(other.cost().tags["team"], "ads");
}

#[test]
fn invalid_budgets_are_rejected() {
    let cases = [
        Budget::enforce(BudgetScope::Client, BudgetPeriod::Day, Decimal::ZERO).unwrap_err(),
        Budget::enforce(BudgetScope::Client, BudgetPeriod::Day, dec("-5")).unwrap_err(),
        Budget::alert(BudgetScope::endpoint(" "), BudgetPeriod::Day, dec("5")).unwrap_err(),
        Budget::enforce(BudgetScope::Client, BudgetPeriod::Day, dec("5"))
            .unwrap()
            .estimate(Estimate::Fixed { usd: dec("-1") })
            .unwrap_err(),
    ];
    for err in cases {
        assert!(matches!(err, Error::Config(_)), "{err:?}");
    }
}

#[tokio::test]
async fn unpriced_calls_count_at_their_estimate_so_an_enforced_budget_still_stops_them() {
    // ml.nope.xlarge has no price anywhere: every receipt's compute is Unpriced.
    let fake = FakeSageMaker::start().await;
    fake.add_endpoint(
        "exotic",
        vec![FakeVariant::instance("AllTraffic", "ml.nope.xlarge", 1)],
    );
    let r = "us-east-1".to_owned();
    let budget = Budget::enforce(
        BudgetScope::endpoint("exotic"),
        BudgetPeriod::Day,
        dec("0.025"),
    )
    .unwrap()
    .estimate(Estimate::Fixed { usd: dec("0.01") })
    .unwrap();
    let client = Client::builder(&fake.sdk_config().await)
        .free_of_charge(PriceKey::DataIn { region: r.clone() })
        .free_of_charge(PriceKey::DataOut { region: r.clone() })
        .budget(budget)
        .build()
        .unwrap();
    let send = || {
        client
            .invoke_endpoint()
            .endpoint_name("exotic")
            .body(Blob::new("{}"))
            .send()
    };
    // Each unpriced call counts at its 0.01 estimate, not at $0:
    // 0.01 + 0.01 = 0.02 spent; a third would make 0.03 > 0.025.
    for _ in 0..2 {
        let response = send().await.unwrap();
        assert!(!response.cost().is_fully_priced());
        assert_eq!(response.cost().cost_usd, Decimal::ZERO);
    }
    let status = client.meter().budget_status();
    assert_eq!(status[0].spent_usd, dec("0.02"));
    let err = send().await.unwrap_err();
    assert!(matches!(err, Error::BudgetExceeded { .. }), "{err:?}");
    assert_eq!(fake.invocations(), 2, "the refused call was never sent");
}

#[tokio::test]
async fn a_budget_beyond_any_bill_is_refused_when_configured_and_the_largest_one_works() {
    let most = sagemeter::budget::MAX_BUDGET_USD;
    assert_eq!(most, dec("1000000000000"));
    let too_much = most + dec("0.01");
    for err in [
        Budget::alert(BudgetScope::Client, BudgetPeriod::Day, Decimal::MAX).unwrap_err(),
        Budget::enforce(BudgetScope::Client, BudgetPeriod::Day, too_much).unwrap_err(),
        Budget::enforce(BudgetScope::Client, BudgetPeriod::Day, most)
            .unwrap()
            .estimate(Estimate::Fixed { usd: too_much })
            .unwrap_err(),
    ] {
        assert!(matches!(err, Error::Config(_)), "{err:?}");
    }
    // The largest limit, with the largest estimate: 50 % of it is 5·10¹¹ USD and
    // a call reserves 10¹² USD, all inside Decimal's range; the call goes through.
    let fake = fake().await;
    let budget = Budget::enforce(BudgetScope::Client, BudgetPeriod::Day, most)
        .unwrap()
        .estimate(Estimate::Fixed { usd: most })
        .unwrap();
    let client = with_budget(&fake, budget).await;
    assert_eq!(call(&client).await.unwrap(), dec("0.001"));
    assert_eq!(spent_held(&client), (dec("0.001"), Decimal::ZERO));
}

/// An enforced budget of $1 a day on `endpoint`, counting an unpriced call at a
/// fixed $0.05.
fn day_of_a_dollar_estimating_five_cents(endpoint: &str) -> Budget {
    daily(endpoint, "1", "0.05")
}

/// `limit_usd` a day on `endpoint`, each call (or async job) estimated at a
/// fixed `estimate_usd`.
fn daily(endpoint: &str, limit_usd: &str, estimate_usd: &str) -> Budget {
    Budget::enforce(
        BudgetScope::endpoint(endpoint),
        BudgetPeriod::Day,
        dec(limit_usd),
    )
    .unwrap()
    .estimate(Estimate::Fixed {
        usd: dec(estimate_usd),
    })
    .unwrap()
}

#[tokio::test]
async fn an_unpriced_async_settlement_counts_at_the_rest_of_its_invocations_estimate() {
    let fake = fake().await;
    let budget = day_of_a_dollar_estimating_five_cents("rt");
    // Data is free, the per-inference fee 0.001 USD; the instance's price is unknown.
    let r = "us-east-1".to_owned();
    let client = Client::builder(&fake.sdk_config().await)
        .price_source(NoPrices)
        .free_of_charge(PriceKey::DataIn { region: r.clone() })
        .free_of_charge(PriceKey::DataOut { region: r })
        .usage_charges("rt", UsageCharges::default().per_1000_calls(Decimal::ONE))
        .budget(budget)
        .build()
        .unwrap();
    let submitted = submit_async(&client, "rt", 1024).await;
    // The submission is fully priced (the fee): it counts 0.001 USD, and the
    // invocation holds the rest of its estimate, 0.05 − 0.001 = 0.049.
    assert!(submitted.cost().is_fully_priced());
    assert_eq!(spent_held(&client), (dec("0.001"), dec("0.049")));
    let settled = submitted
        .settle(sagemeter::client::AsyncCompletion::processed_for(
            Duration::from_secs(90),
        ))
        .await;
    // The settlement's compute is unpriced: it counts at the 0.049 its invocation
    // still held, not at its 0 USD of priced lines; the invocation as a whole
    // counts at its 0.05 estimate (0.001 + 0.049).
    assert!(!settled.is_fully_priced());
    assert_eq!(settled.cost_usd, Decimal::ZERO);
    let status = &client.meter().budget_status()[0];
    assert_eq!(status.spent_usd, dec("0.05"));
    assert_eq!(status.reserved_usd, Decimal::ZERO);
}

/// An async endpoint `jobs` (1 × ml.m5.xlarge) whose `AsyncInf` compute is priced
/// at 36 USD/h by an override, so 10 s of it costs 10 / 3600 × 36 = 0.10 USD;
/// data is free and the per-inference fee is 1 USD per 1,000 (0.001 a submission).
async fn ten_cents_per_ten_seconds(fake: &FakeSageMaker, budget: Budget) -> (Client, Receipts) {
    let builder = Client::builder(&fake.sdk_config().await);
    ten_cents_per_ten_seconds_with(builder, budget)
}

/// [`ten_cents_per_ten_seconds`] from `builder` (e.g. with a manual clock).
fn ten_cents_per_ten_seconds_with(builder: ClientBuilder, budget: Budget) -> (Client, Receipts) {
    let (builder, receipts) = ten_cents_per_ten_seconds_on(builder, budget);
    (builder.build().unwrap(), receipts)
}

/// [`ten_cents_per_ten_seconds`] on a manual clock the test moves on, from
/// 2027-01-15 08:00:00 UTC.
async fn ten_cents_per_ten_seconds_on_a_manual_clock(
    fake: &FakeSageMaker,
    budget: Budget,
) -> (Client, Receipts, ManualTimeSource) {
    let (time, shared) = manual_clock();
    let builder = Client::builder(&fake.sdk_config().await).time_source(shared);
    let (client, receipts) = ten_cents_per_ten_seconds_with(builder, budget);
    (client, receipts, time)
}

/// `builder` with `jobs`, an async endpoint on 1 × ml.m5.xlarge, its
/// AsyncInference at $36/h and $1 per 1,000 submissions, no discovery and no
/// other prices: data processed is for the caller to price.
fn async_jobs_at_36_an_hour(builder: ClientBuilder) -> ClientBuilder {
    builder
        .without_discovery()
        .price_source(NoPrices)
        .endpoint_profile(
            EndpointProfile::new(
                "jobs",
                vec![VariantProfile::instance("AllTraffic", "ml.m5.xlarge", 1)],
            )
            .asynchronous(),
        )
        .price_override(
            PriceKey::AsyncInference {
                region: "us-east-1".into(),
                instance_type: "ml.m5.xlarge".into(),
            },
            dec("36"),
        )
        .usage_charges("jobs", UsageCharges::default().per_1000_calls(Decimal::ONE))
}

/// `builder` set up as [`ten_cents_per_ten_seconds`] says, its receipts recorded,
/// left to build as a client or as a meter (for the interceptor).
pub(crate) fn ten_cents_per_ten_seconds_on(
    builder: ClientBuilder,
    budget: Budget,
) -> (ClientBuilder, Receipts) {
    let r = "us-east-1".to_owned();
    let receipts = Receipts::default();
    let builder = async_jobs_at_36_an_hour(builder)
        .free_of_charge(PriceKey::DataIn { region: r.clone() })
        .free_of_charge(PriceKey::DataOut { region: r })
        .budget(budget)
        .sink(receipts.clone());
    (builder, receipts)
}

/// A client with `budget` whose `jobs` is as `ten_cents_per_ten_seconds` has
/// it ($36/h of AsyncInf, $1 per 1,000 submissions), but data processed priced
/// at us-east-1's $0.016 a GB, in and out.
async fn jobs_with_data_priced(fake: &FakeSageMaker, budget: Budget) -> Client {
    let r = "us-east-1".to_owned();
    async_jobs_at_36_an_hour(Client::builder(&fake.sdk_config().await))
        .price_override(PriceKey::DataIn { region: r.clone() }, dec("0.016"))
        .price_override(PriceKey::DataOut { region: r }, dec("0.016"))
        .budget(budget)
        .build()
        .unwrap()
}

/// An async job submitted to `jobs` from S3 without `input_bytes`: its input's
/// size, and so its data in, unknown.
async fn submit_of_unstated_size(client: &Client) -> sagemeter::client::AsyncInvocation {
    client
        .invoke_endpoint_async()
        .endpoint_name("jobs")
        .input_location("s3://fake-bucket/input/1.json")
        .send()
        .await
        .unwrap()
}

/// An async job's completion: 10 s of processing, 1 MiB (2²⁰ bytes) of output.
fn ten_seconds_and_a_mib_out() -> AsyncCompletion<'static> {
    AsyncCompletion::processed_for(Duration::from_secs(10)).output_bytes(1 << 20)
}

/// A copy of `pending`, as a worker reads it back from a queue.
fn copy_of(pending: &sagemeter::client::PendingInference) -> sagemeter::client::PendingInference {
    serde_json::from_str(&serde_json::to_string(pending).unwrap()).unwrap()
}

#[tokio::test]
async fn an_async_input_in_s3_of_unstated_size_counts_at_its_1_gb_bound_not_at_the_estimate() {
    let fake = fake().await;
    // $1 a day on `jobs`, each invocation estimated at a fixed $0.50.
    let client = jobs_with_data_priced(&fake, daily("jobs", "1", "0.50")).await;
    let submit = || submit_of_unstated_size(&client);
    // Submitted from S3 without `input_bytes`: the $0.001 fee is priced, data in
    // is not (its size is unknown). The input is at most 1 GB (SageMaker's
    // async input limit): 2³⁰ bytes = 1 GB × $0.016 = $0.016 at most, counted
    // with the submission: 0.001 + 0.016 = $0.017 spent, one unpriced call.
    // Held: 0.50 − 0.017 = 0.483.
    let first = submit().await;
    assert!(!first.cost().is_fully_priced());
    assert_eq!(first.cost().cost_usd, dec("0.001"));
    assert_eq!(
        spent_held_unpriced(&client),
        (dec("0.017"), dec("0.483"), 1)
    );
    // Settled with its output's size: 10 s at $36/h = 10 / 3,600 × 36 = $0.10 of
    // compute, and 1 MiB out = 2²⁰ / 2³⁰ GB × $0.016 = $0.000015625: all priced.
    let settled = first.settle(ten_seconds_and_a_mib_out()).await;
    assert!(settled.is_fully_priced(), "{settled:#?}");
    assert_eq!(settled.cost_usd, dec("0.100015625"));
    // The invocation counts its priced 0.001 + 0.100015625 and the $0.016
    // bound of its input: $0.117015625, not its $0.50 estimate; still one
    // unpriced call.
    assert_eq!(
        spent_held_unpriced(&client),
        (dec("0.117015625"), Decimal::ZERO, 1)
    );
    // A second, settled without its output's size: data out is unpriced too,
    // with no bound. It counts no less than its estimate: the fee (0.001) and
    // its input's bound (0.016) at submission, then max(0.10 of compute, 0.483
    // still held) = 0.483, $0.50 in all; spent 0.117015625 + 0.50 =
    // 0.617015625.
    let second = submit().await;
    let settled = second
        .settle(AsyncCompletion::processed_for(Duration::from_secs(10)))
        .await;
    assert!(!settled.is_fully_priced(), "{settled:#?}");
    assert_eq!(settled.cost_usd, dec("0.10"));
    assert_eq!(
        spent_held_unpriced(&client),
        (dec("0.617015625"), Decimal::ZERO, 2)
    );
}

#[tokio::test]
async fn a_copy_settled_after_its_original_was_dropped_keeps_the_1_gb_bound_of_its_input() {
    let fake = fake().await;
    // $1 a day on `jobs`, each invocation estimated at a fixed $0.50.
    let client = jobs_with_data_priced(&fake, daily("jobs", "1", "0.50")).await;
    // Submitted from S3 without `input_bytes`: the $0.001 fee ($1 per 1,000
    // calls) is priced, its data in is not, but is at most 1 GB × $0.016 =
    // $0.016, counted with the submission: $0.017 spent, one unpriced call;
    // 0.50 − 0.017 = $0.483 held.
    let original = submit_of_unstated_size(&client).await;
    assert_eq!(
        spent_held_unpriced(&client),
        (dec("0.017"), dec("0.483"), 1)
    );
    // Handed off (serialised for a worker of this process), then dropped
    // before its hold lapses: the hold is released.
    let copy = copy_of(original.pending());
    drop(original);
    assert_eq!(spent_held(&client), (dec("0.017"), Decimal::ZERO));
    // The copy settles with its output's size: 10 s at $36/h = 10 / 3,600 ×
    // 36 = $0.10 of compute, and 1 MiB out = 2²⁰ / 2³⁰ GB × $0.016 =
    // $0.000015625: $0.100015625, all priced.
    let settled = client
        .meter()
        .settle_async(copy, ten_seconds_and_a_mib_out())
        .await
        .unwrap();
    assert!(settled.is_fully_priced(), "{settled:#?}");
    assert_eq!(settled.cost_usd, dec("0.100015625"));
    // The invocation still left its input unpriced, its $0.016 bound counted
    // once: as it would settled through the original, 0.001 + 0.100015625 +
    // 0.016 = $0.117015625, one unpriced call (not $0.101015625 and none, as
    // a call fully priced, nor the bound or the call twice).
    assert_eq!(
        spent_held_unpriced(&client),
        (dec("0.117015625"), Decimal::ZERO, 1)
    );
}

/// Two clients with `$1` a day on `jobs` (a fixed $0.50 estimate): S submits,
/// W (a worker's) settles.
async fn submitter_and_worker(fake: &FakeSageMaker) -> (Client, Client) {
    let submitter = jobs_with_data_priced(fake, daily("jobs", "1", "0.50")).await;
    let worker = jobs_with_data_priced(fake, daily("jobs", "1", "0.50")).await;
    (submitter, worker)
}

/// What S's budget counts of an async job whose input in S3 is of unstated
/// size, submitted by S and settled by W: the submission's $0.001 fee ($1 per
/// 1,000 calls) priced, and its data in unpriced but at most 1 GB (SageMaker's
/// async input limit) × $0.016 = $0.016, counted where and when it was
/// submitted: 0.001 + 0.016 = $0.017, one unpriced call, nothing held. W
/// counts what it settled: 10 s at $36/h = 10 / 3,600 × 36 = $0.10 of compute
/// and 1 MiB out = 2²⁰ / 2³⁰ GB × $0.016 = $0.000015625, all priced.
fn counted_where_submitted(submitter: &Client, worker: &Client) {
    assert_eq!(
        spent_held_unpriced(submitter),
        (dec("0.017"), Decimal::ZERO, 1)
    );
    assert_eq!(
        spent_held_unpriced(worker),
        (dec("0.100015625"), Decimal::ZERO, 0)
    );
}

#[tokio::test]
async fn a_copy_settled_by_another_client_leaves_the_1_gb_bound_of_its_input_counted_where_submitted()
 {
    let fake = fake().await;
    let (submitter, worker) = submitter_and_worker(&fake).await;
    // Submitted from S3 without `input_bytes`, serialised for a worker, and
    // the original dropped before its hold lapses.
    let original = submit_of_unstated_size(&submitter).await;
    let copy = copy_of(original.pending());
    drop(original);
    let settled = worker
        .meter()
        .settle_async(copy, ten_seconds_and_a_mib_out())
        .await
        .unwrap();
    assert!(settled.is_fully_priced(), "{settled:#?}");
    assert_eq!(settled.cost_usd, dec("0.100015625"));
    // Not $0.001 and no unpriced call, as if its input had been free.
    counted_where_submitted(&submitter, &worker);
}

#[tokio::test]
async fn a_pending_job_settled_by_another_client_in_process_leaves_the_1_gb_bound_counted_where_submitted()
 {
    let fake = fake().await;
    let (submitter, worker) = submitter_and_worker(&fake).await;
    // The pending half itself (S's hold in it) handed to W in this process:
    // W's settlement releases S's hold.
    let (_, _, pending) = submit_of_unstated_size(&submitter).await.into_parts();
    let settled = worker
        .meter()
        .settle_async(pending, ten_seconds_and_a_mib_out())
        .await
        .unwrap();
    assert_eq!(settled.cost_usd, dec("0.100015625"));
    counted_where_submitted(&submitter, &worker);
}

#[tokio::test]
async fn a_copy_settled_under_an_alerting_budget_counts_among_its_unpriced_calls() {
    let fake = fake().await;
    // An alerting $1 a day on `jobs`: it holds nothing, and counts the priced
    // part of a call not fully priced, as a lower bound.
    let budget = Budget::alert(BudgetScope::endpoint("jobs"), BudgetPeriod::Day, dec("1")).unwrap();
    let client = jobs_with_data_priced(&fake, budget).await;
    // Submitted from S3 without `input_bytes`: the $0.001 fee is priced, its
    // data in is not.
    let original = submit_of_unstated_size(&client).await;
    assert_eq!(spent_held(&client), (dec("0.001"), Decimal::ZERO));
    // A copy settles while the original is kept: 10 s at $36/h = $0.10 of
    // compute, and 1 MiB out = 2²⁰ / 2³⁰ GB × $0.016 = $0.000015625.
    let settled = client
        .meter()
        .settle_async(copy_of(original.pending()), ten_seconds_and_a_mib_out())
        .await
        .unwrap();
    assert_eq!(settled.cost_usd, dec("0.100015625"));
    // Spent: the priced 0.001 + 0.100015625 = $0.101015625, a lower bound,
    // by the one invocation that left its input unpriced; no less once the
    // original is dropped.
    let status = |client: &Client| {
        let status = &client.meter().budget_status()[0];
        (status.spent_usd, status.unpriced_calls)
    };
    assert_eq!(status(&client), (dec("0.101015625"), 1));
    drop(original);
    assert_eq!(status(&client), (dec("0.101015625"), 1));
}

/// A sink that moves the manual clock on by 1 s at each receipt: a slow sink.
#[derive(Debug, Clone)]
struct SlowSink(ManualTimeSource);

impl sagemeter::sink::CostSink for SlowSink {
    fn record(&self, _cost: &sagemeter::Cost) {
        self.0.advance(Duration::from_secs(1));
    }
    fn name(&self) -> &str {
        "slow"
    }
}

/// An async submission's budget charge is worked out when its receipt was
/// billed, before the sinks run, as any call's is: submitted at
/// 14:59:59.990 under an enforced $1 an hour estimating $0.50 a call, with a
/// sink that takes 1 s, its part is charged in the 14:00 hour, not the 15:00
/// one the sink's end falls in.
#[tokio::test]
async fn an_async_submission_billed_just_before_the_hour_is_charged_in_that_hour() {
    let fake = fake().await;
    // 2027-01-15 14:59:59.990 UTC.
    let time = ManualTimeSource::new(
        UNIX_EPOCH + Duration::from_secs(1_800_000_000) + Duration::from_millis(25_199_990),
    );
    let r = "us-east-1".to_owned();
    let client = Client::builder(&fake.sdk_config().await)
        .time_source(SharedTimeSource::new(time.clone()))
        .without_discovery()
        .price_source(NoPrices)
        .endpoint_profile(
            EndpointProfile::new(
                "jobs",
                vec![VariantProfile::instance("AllTraffic", "ml.m5.xlarge", 1)],
            )
            .asynchronous(),
        )
        .price_override(
            PriceKey::AsyncInference {
                region: r.clone(),
                instance_type: "ml.m5.xlarge".into(),
            },
            dec("36"),
        )
        .price_override(PriceKey::DataIn { region: r.clone() }, dec("0.016"))
        .price_override(PriceKey::DataOut { region: r }, dec("0.016"))
        .budget(
            Budget::enforce(BudgetScope::endpoint("jobs"), BudgetPeriod::Hour, dec("1"))
                .unwrap()
                .estimate(Estimate::Fixed { usd: dec("0.50") })
                .unwrap(),
        )
        .sink(SlowSink(time.clone()))
        .build()
        .unwrap();
    // Its input, 2³⁰ B = 1 GB × $0.016 a GB processed in = $0.016, billed at
    // 14:59:59.990: spent in the 14:00 hour; the rest of the $0.50 estimate,
    // 0.50 − 0.016 = $0.484, held for its compute until it settles.
    let invocation = submit_async(&client, "jobs", 1 << 30).await;
    assert_eq!(invocation.cost().cost_usd, dec("0.016"));
    // 15:00:00.990 once the sink is done: the 15:00 hour has nothing spent
    // (charged after the sinks, it had the $0.016), the $0.484 still held.
    assert_eq!(spent_held(&client), (Decimal::ZERO, dec("0.484")));
}

#[tokio::test]
async fn queued_async_invocations_hold_their_estimate_until_they_settle() {
    let fake = fake().await;
    let budget = daily("jobs", "0.20", "0.05");
    let (client, receipts) = ten_cents_per_ten_seconds(&fake, budget).await;

    // Each accepted invocation counts at its 0.05 estimate until it settles: its
    // 0.001 submission spent, 0.049 held. Four make 4 × 0.05 = 0.20, the limit;
    // a fifth would make 0.25 > 0.20 and is refused before it is sent.
    let mut accepted = Vec::new();
    for _ in 0..4 {
        accepted.push(submit_async(&client, "jobs", 1024).await);
    }
    assert_eq!(spent_held(&client), (dec("0.004"), dec("0.196")));
    let refused = client
        .invoke_endpoint_async()
        .endpoint_name("jobs")
        .input_location("s3://fake-bucket/input/5.json")
        .input_bytes(1024)
        .send()
        .await;
    assert!(
        matches!(refused, Err(Error::BudgetExceeded { .. })),
        "{refused:?}"
    );

    // Each settles at 10 s of compute, 0.10: spent 4 × (0.001 + 0.10) = 0.404,
    // nothing held, and the spend is exactly what the receipts say.
    for invocation in accepted {
        let settled = invocation
            .settle(AsyncCompletion::processed_for(Duration::from_secs(10)))
            .await;
        assert!(settled.is_fully_priced(), "{settled:#?}");
        assert_eq!(settled.cost_usd, dec("0.10"));
    }
    assert_eq!(spent_held(&client), (dec("0.404"), Decimal::ZERO));
    let receipted: Decimal = receipts.all().iter().map(|c| c.cost_usd).sum();
    assert_eq!(receipted, dec("0.404"));
}

#[tokio::test]
async fn an_async_invocation_settled_twice_is_billed_counted_and_charged_once() {
    let fake = fake().await;
    let budget = day_of_a_dollar_estimating_five_cents("jobs");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("calls.jsonl");
    let builder = Client::builder(&fake.sdk_config().await)
        .sink(sagemeter::ledger::JsonlLedger::open(&path).unwrap());
    let (client, receipts) = ten_cents_per_ten_seconds_with(builder, budget);
    let invocation = submit_async(&client, "jobs", 1024).await;
    // The notification's copy, as a worker reads it from SQS, twice (at least once).
    let copy = serde_json::to_string(invocation.pending()).unwrap();
    let ten_seconds = || AsyncCompletion::processed_for(Duration::from_secs(10));

    // The original settles: 10 s at $36/h = 10/3600 × 36 = $0.10.
    let first = invocation.settle(ten_seconds()).await;
    assert_eq!(first.cost_usd, dec("0.10"));
    assert!(!first.is_duplicate_settlement());
    // The redelivered copy: an explicit duplicate, billing nothing.
    let again: sagemeter::client::PendingInference = serde_json::from_str(&copy).unwrap();
    let second = client
        .meter()
        .settle_async(again, ten_seconds())
        .await
        .unwrap();
    assert!(second.is_duplicate_settlement(), "{second:#?}");
    assert_eq!(second.call_id, first.call_id);
    assert_eq!(second.cost_usd, Decimal::ZERO);
    assert!(second.lines.is_empty(), "{second:#?}");
    assert!(
        second.notes[0].contains("settled already by this client at"),
        "{:?}",
        second.notes
    );
    // A third, through the other entry point, all the same.
    let third: sagemeter::client::PendingInference = serde_json::from_str(&copy).unwrap();
    assert!(
        client
            .meter()
            .settle_async(third, ten_seconds())
            .await
            .unwrap()
            .is_duplicate_settlement()
    );

    // Spent once: the $1/1,000 calls fee at submission ($0.001) + the $0.10
    // settlement = $0.101, in the totals, the budget, the sinks and the ledger.
    let totals = client.meter().totals();
    assert_eq!((totals.client_usd, totals.calls), (dec("0.101"), 1));
    assert_eq!(spent_held(&client), (dec("0.101"), Decimal::ZERO));
    assert_eq!(receipts.all().len(), 2, "submission + one settlement");
    client.meter().flush().await.unwrap();
    let ledger = sagemeter::ledger::read_all(&path).unwrap().records;
    assert_eq!(ledger.len(), 2, "{ledger:#?}");
    let in_ledger: Decimal = ledger.iter().map(|c| c.cost_usd).sum();
    assert_eq!(in_ledger, dec("0.101"));
}

#[tokio::test]
async fn a_duplicate_settlement_is_told_by_a_typed_fact_not_by_the_wording_of_its_notes() {
    let fake = fake().await;
    let budget = day_of_a_dollar_estimating_five_cents("jobs");
    let (client, receipts, time) = ten_cents_per_ten_seconds_on_a_manual_clock(&fake, budget).await;
    let invocation = submit_async(&client, "jobs", 1024).await;
    let copy = serde_json::to_string(invocation.pending()).unwrap();
    let ten_seconds = || AsyncCompletion::processed_for(Duration::from_secs(10));
    // Settled a minute after the submission, on the client's clock.
    time.advance(Duration::from_secs(60));
    let first = invocation.settle(ten_seconds()).await;
    assert_eq!(first.settled_before, None);

    // The redelivered copy is a duplicate, and says which settlement came first.
    let mut second = second_settlement(&client, &copy, ten_seconds()).await;
    let first_at = chrono::DateTime::from_timestamp(1_800_000_060, 0).unwrap();
    let expected: SettledBefore = serde_json::from_value(serde_json::json!({
        "by": "this_client",
        "at": first_at.to_rfc3339(),
    }))
    .unwrap();
    assert_eq!(second.settled_before, Some(expected));
    assert_eq!(
        second.settled_before.as_ref().unwrap().by,
        SettledBy::ThisClient
    );

    // The first settlement with the duplicate's note copied onto it (or a caller's
    // own note in that wording) is still the one that billed.
    let mut relabelled = first.clone();
    relabelled.notes.insert(0, second.notes[0].clone());
    assert!(!relabelled.is_duplicate_settlement(), "{relabelled:#?}");

    // The duplicate is one whatever its notes say: cleared (a caller that shows
    // none), or serialised and read back.
    second.notes.clear();
    assert!(second.is_duplicate_settlement(), "{second:#?}");
    let read_back: sagemeter::Cost =
        serde_json::from_str(&serde_json::to_string(&second).unwrap()).unwrap();
    assert!(read_back.is_duplicate_settlement(), "{read_back:#?}");

    // Billed once: $0.001 at submission + 10 s at $36/h (10 / 3600 × 36 = $0.10).
    assert_eq!(client.meter().totals().client_usd, dec("0.101"));
    assert_eq!(receipts.all().len(), 2, "submission + one settlement");
}

/// Settles a copy of a pending invocation (its serialised form `copy`) again.
async fn second_settlement(
    client: &Client,
    copy: &str,
    completion: AsyncCompletion<'_>,
) -> sagemeter::Cost {
    let again: sagemeter::client::PendingInference = serde_json::from_str(copy).unwrap();
    client
        .meter()
        .settle_async(again, completion)
        .await
        .unwrap()
}

/// An accepted async invocation of `jobs` (its 1,024 bytes of input in the
/// fake's bucket) that may wait `ttl` seconds in SageMaker's queue and then run
/// for 600 s; without a `ttl`, SageMaker's defaults (6 h and 15 min).
async fn submit_bounded(client: &Client, ttl: Option<i32>) -> sagemeter::client::AsyncInvocation {
    client
        .invoke_endpoint_async()
        .endpoint_name("jobs")
        .input_location("s3://fake-bucket/input/1.json")
        .input_bytes(1024)
        // The SDK builder's `set_*` setters, on sagemeter's builder.
        .set_request_ttl_seconds(ttl)
        .set_invocation_timeout_seconds(ttl.map(|_| 600))
        .send()
        .await
        .expect("the fake queues the submission")
}

#[tokio::test]
async fn a_pending_invocation_kept_past_sagemakers_bound_is_charged_its_hold_once_and_only_once() {
    let fake = fake().await;
    let budget = daily("jobs", "0.10", "0.05");
    let (client, _, time) = ten_cents_per_ten_seconds_on_a_manual_clock(&fake, budget).await;
    // At most 1 h in SageMaker's queue, then at most 10 min to run: by 4,200 s
    // after submission it has run or expired. Its notification is lost: the
    // pending half is kept, never settled nor dropped.
    let (_, _, lost) = submit_bounded(&client, Some(3600)).await.into_parts();
    // Held: the estimate less the 0.001 submission fee, 0.05 − 0.001 = 0.049.
    assert_eq!(spent_held(&client), (dec("0.001"), dec("0.049")));
    time.advance(Duration::from_secs(4199));
    assert_eq!(client.meter().budget_status()[0].reserved_usd, dec("0.049"));
    time.advance(Duration::from_secs(1));
    // 4,200 s: the invocation counts as run; its hold is charged,
    // provisionally: 0.001 + 0.049 = 0.05 spent, nothing held.
    assert_eq!(spent_held(&client), (dec("0.05"), Decimal::ZERO));
    // Another invocation (SageMaker's defaults: 6 h + 15 min) fits, 0.05 + 0.05
    // = 0.10 of 0.10, and holds its own 0.049 (spent 0.05 + its 0.001 fee);
    // settling or dropping the lapsed one must not release that.
    let (_, _, second) = submit_bounded(&client, None).await.into_parts();
    assert_eq!(spent_held(&client), (dec("0.051"), dec("0.049")));
    // The lost output turns up after all, the same day: its 10 s are billed
    // (0.10) and replace the 0.049 charged for it, 0.051 − 0.049 + 0.10 =
    // 0.102; the other invocation's hold stands.
    let settled = client
        .meter()
        .settle_async(
            lost,
            AsyncCompletion::processed_for(Duration::from_secs(10)),
        )
        .await
        .unwrap();
    assert_eq!(settled.cost_usd, dec("0.10"));
    assert_eq!(spent_held(&client), (dec("0.102"), dec("0.049")));
    // The second lapses at 6 h 15 min = 22,500 s, not before (15:25 UTC, the
    // same day as the 08:00 start): its 0.049 charged, 0.102 + 0.049 = 0.151.
    time.advance(Duration::from_secs(22_499));
    assert_eq!(client.meter().budget_status()[0].reserved_usd, dec("0.049"));
    time.advance(Duration::from_secs(1));
    assert_eq!(spent_held(&client), (dec("0.151"), Decimal::ZERO));
    // Dropped unsettled after that, it keeps the charge.
    drop(second);
    assert_eq!(spent_held(&client), (dec("0.151"), Decimal::ZERO));
}

#[tokio::test]
async fn a_pending_invocation_dropped_after_its_lapse_keeps_the_charge_though_no_status_came_between()
 {
    let fake = fake().await;
    let budget = daily("jobs", "0.10", "0.05");
    let (client, _, time) = ten_cents_per_ten_seconds_on_a_manual_clock(&fake, budget).await;
    // At most 1 h in SageMaker's queue, then at most 10 min to run: by 4,200 s
    // after submission it has run or expired.
    let (_, _, pending) = submit_bounded(&client, Some(3600)).await.into_parts();
    // Spent: the submission's fee, 1 USD / 1,000 = 0.001; held: the estimate
    // less it, 0.05 − 0.001 = 0.049.
    assert_eq!(spent_held(&client), (dec("0.001"), dec("0.049")));
    assert!(
        format!("{pending:?}").contains("hold: 0.049 USD"),
        "{pending:?}"
    );
    // 4,200 s on, with no call nor status between: the hold has lapsed on the
    // meter's clock, and the pending invocation shows it holds nothing.
    time.advance(Duration::from_secs(4200));
    assert!(
        format!("{pending:?}").contains("hold: 0 USD"),
        "{pending:?}"
    );
    // Dropped unsettled now, it keeps the charge: its 0.049 counted as run,
    // 0.001 + 0.049 = 0.05 spent, nothing held. (Released, it would leave
    // 0.001 spent, as if SageMaker had never run it.)
    drop(pending);
    assert_eq!(spent_held(&client), (dec("0.05"), Decimal::ZERO));
}

#[tokio::test]
async fn a_pending_invocation_dropped_unsettled_releases_its_hold() {
    let fake = fake().await;
    let budget = daily("jobs", "0.05", "0.05");
    let (client, _) = ten_cents_per_ten_seconds(&fake, budget).await;
    let (_, _, pending) = submit_async(&client, "jobs", 1024).await.into_parts();
    // Handed off (to be settled elsewhere): still held, 0.05 − 0.001 = 0.049.
    assert_eq!(client.meter().budget_status()[0].reserved_usd, dec("0.049"));
    drop(pending);
    assert_eq!(spent_held(&client), (dec("0.001"), Decimal::ZERO));
}

#[tokio::test]
async fn a_panicking_alert_callback_neither_fails_the_call_nor_loses_its_spend() {
    let fake = fake().await;
    let budget = Budget::alert(BudgetScope::Client, BudgetPeriod::Day, dec("0.001"))
        .unwrap()
        .on_alert(|_| panic!("the application's alert handler failed"));
    let client = with_budget(&fake, budget).await;
    // One 0.001 call passes 50, 80 and 100 % of 0.001: each callback panics.
    assert_eq!(call(&client).await.unwrap(), dec("0.001"));
    assert_eq!(call(&client).await.unwrap(), dec("0.001"));
    assert_eq!(client.meter().budget_status()[0].spent_usd, dec("0.002"));
}

#[tokio::test]
async fn an_async_submission_dropped_after_sagemaker_accepted_it_counts_at_its_estimate() {
    let fake = fake().await;
    // A silent control plane: discovery gives up after 2 s; the submission is
    // accepted (202) at once.
    *fake.state.control_plane_delay.lock().unwrap() = Duration::from_secs(30);
    // $1 a day on `rt`, each invocation estimated at a fixed $0.50; data in at
    // us-east-1's $0.016 a GB, and a fee of $1 per 1,000 inferences.
    let budget = Budget::enforce(BudgetScope::endpoint("rt"), BudgetPeriod::Day, dec("1"))
        .unwrap()
        .estimate(Estimate::Fixed { usd: dec("0.50") })
        .unwrap();
    let receipts = Receipts::default();
    let client = Client::builder(&fake.sdk_config().await)
        .price_source(NoPrices)
        .discovery_timeout(Duration::from_secs(2))
        .price_override(
            PriceKey::DataIn {
                region: "us-east-1".to_owned(),
            },
            dec("0.016"),
        )
        .usage_charges("rt", UsageCharges::default().per_1000_calls(Decimal::ONE))
        .budget(budget)
        .sink(receipts.clone())
        .build()
        .unwrap();
    // From S3, its size not given; dropped (a timeout) after SageMaker accepted
    // it, while the endpoint's profile is still looked up: its pending
    // invocation is lost with it, and nothing will settle its compute.
    let submit = client
        .invoke_endpoint_async()
        .endpoint_name("rt")
        .input_location("s3://fake-bucket/input/1.json")
        .send();
    let dropped = tokio::time::timeout(Duration::from_millis(500), submit).await;
    assert!(dropped.is_err(), "still finding the endpoint's profile");
    // Its receipt is made once discovery gives up (in the background), and
    // its budget settled before any sink sees it.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while receipts.all().is_empty() {
        assert!(std::time::Instant::now() < deadline, "no receipt");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let cost = receipts.all().remove(0);
    // The submission's lines: the fee, 1 / 1,000 = $0.001, priced; data in
    // unpriced (its size unknown).
    assert_eq!(cost.cost_usd, dec("0.001"));
    assert!(!cost.is_fully_priced(), "{cost:#?}");
    // SageMaker runs the job all the same: the invocation counts at no less
    // than its estimate, max(0.001, 0.50) = $0.50, nothing left held; not at
    // its fee and its input's 1 GB bound, 0.001 + 2³⁰ bytes = 1 GB × $0.016
    // = $0.017, as if its compute were priced.
    assert_eq!(
        spent_held_unpriced(&client),
        (dec("0.50"), Decimal::ZERO, 1)
    );
}

/// $10 a day on `jobs`, each async job estimated at a fixed $0.50.
fn ten_dollars_a_day_at_fifty_cents_a_job() -> Budget {
    daily("jobs", "10", "0.50")
}

#[tokio::test]
async fn an_async_invocation_settled_through_a_copy_is_charged_once_whatever_becomes_of_the_original()
 {
    let fake = fake().await;
    // 2027-01-15 08:00:00 UTC on the client's clock.
    // `jobs`: $0.001 a submission (its fee; data free), 10 s of compute at
    // $36/h = 10 / 3,600 × 36 = $0.10 a settlement.
    let (client, _, time) = ten_cents_per_ten_seconds_on_a_manual_clock(
        &fake,
        ten_dollars_a_day_at_fifty_cents_a_job(),
    )
    .await;
    let ten_seconds = || AsyncCompletion::processed_for(Duration::from_secs(10));
    // A copy of a pending invocation, as a worker of the same process reads
    // it back (from a queue, a database), settled with the same client.
    let settle_copy = |copy: String| {
        let copy: sagemeter::client::PendingInference = serde_json::from_str(&copy).unwrap();
        client.meter().settle_async(copy, ten_seconds())
    };

    // 08:00: job `a`: its $0.001 fee spent, 0.50 − 0.001 = $0.499 held until
    // SageMaker's defaults run out, 6 h in the queue + 15 min to run = 14:15.
    let (_, _, a) = submit_async(&client, "jobs", 1024).await.into_parts();
    let copy_of_a = serde_json::to_string(&a).unwrap();
    assert_eq!(spent_held(&client), (dec("0.001"), dec("0.499")));
    // 08:01: its copy settles: $0.10. It takes over the original's hold:
    // 0.001 + 0.10 = $0.101 spent, nothing held.
    time.advance(Duration::from_secs(60));
    let settled = settle_copy(copy_of_a).await.unwrap();
    assert_eq!(settled.cost_usd, dec("0.10"));
    assert_eq!(spent_held(&client), (dec("0.101"), Decimal::ZERO));
    // 14:15: nothing lapses; the original, dropped, changes nothing. (Before,
    // its hold lapsed at 14:15 and was charged, 0.101 + 0.499 = $0.60, and
    // dropping it kept that.)
    time.advance(Duration::from_secs(22_500 - 60));
    assert_eq!(spent_held(&client), (dec("0.101"), Decimal::ZERO));
    drop(a);
    assert_eq!(spent_held(&client), (dec("0.101"), Decimal::ZERO));

    // 14:15: job `b`: 0.101 + 0.001 = $0.102 spent, $0.499 held until 20:30.
    let (_, _, b) = submit_async(&client, "jobs", 1024).await.into_parts();
    let copy_of_b = serde_json::to_string(&b).unwrap();
    assert_eq!(spent_held(&client), (dec("0.102"), dec("0.499")));
    // 20:30: its hold lapses, charged as run: 0.102 + 0.499 = $0.601. The
    // original is dropped: the charge stays.
    time.advance(Duration::from_secs(22_500));
    assert_eq!(spent_held(&client), (dec("0.601"), Decimal::ZERO));
    drop(b);
    assert_eq!(spent_held(&client), (dec("0.601"), Decimal::ZERO));
    // 21:00, the same day: its copy settles at $0.10 and replaces the charge:
    // 0.601 − 0.499 + 0.10 = $0.202, the two jobs at 0.001 + 0.10 = $0.101
    // each. (Before, dropping the original forgot the charge and the copy
    // counted beside it: 0.601 + 0.10 = $0.701.)
    time.advance(Duration::from_secs(30 * 60));
    let settled = settle_copy(copy_of_b).await.unwrap();
    assert_eq!(settled.cost_usd, dec("0.10"));
    assert_eq!(spent_held(&client), (dec("0.202"), Decimal::ZERO));
    assert_eq!(client.meter().totals().client_usd, dec("0.202"));
}

#[tokio::test]
async fn an_async_invocation_settled_by_another_clients_meter_takes_its_lapsed_charge_back_here() {
    let fake = fake().await;
    // One clock for both clients: 2027-01-15 08:00:00 UTC.
    let time = ManualTimeSource::new(UNIX_EPOCH + Duration::from_secs(1_800_000_000));
    let client = |fake_config| {
        let builder =
            Client::builder(&fake_config).time_source(SharedTimeSource::new(time.clone()));
        ten_cents_per_ten_seconds_with(builder, ten_dollars_a_day_at_fifty_cents_a_job()).0
    };
    let (submitter, settler) = (
        client(fake.sdk_config().await),
        client(fake.sdk_config().await),
    );
    // 08:00: submitted by one client: its $0.001 fee spent there, $0.499 held
    // until 14:15 (6 h + 15 min, SageMaker's defaults).
    let (_, _, pending) = submit_async(&submitter, "jobs", 1024).await.into_parts();
    // 14:15: not settled yet: charged there as run, 0.001 + 0.499 = $0.50.
    time.advance(Duration::from_secs(22_500));
    let status = &submitter.meter().budget_status()[0];
    assert_eq!(status.spent_usd, dec("0.50"));
    // 14:20: the other client's meter settles it: 10 s at $36/h = $0.10,
    // counted in that client's budget, unreserved. Settled there, its charge
    // here is taken back: the submitter counts its $0.001 fee alone (kept,
    // the job would count $0.50 here and $0.10 there).
    time.advance(Duration::from_secs(300));
    let settled = settler
        .meter()
        .settle_async(
            pending,
            AsyncCompletion::processed_for(Duration::from_secs(10)),
        )
        .await
        .unwrap();
    assert_eq!(settled.cost_usd, dec("0.10"));
    assert_eq!(settler.meter().budget_status()[0].spent_usd, dec("0.10"));
    assert_eq!(spent_held(&submitter), (dec("0.001"), Decimal::ZERO));
}

#[tokio::test]
async fn an_async_invocation_settled_by_another_client_keeps_the_submitting_clients_default_tags() {
    let fake = fake().await;
    // `jobs` in both clients as `ten_cents_per_ten_seconds` has it: the $1 per
    // 1,000 fee ($0.001) on each submission, 10 s of AsyncInf at $36/h =
    // 10 / 3,600 × 36 = $0.10 on each settlement, data free.
    // The submitting client tags all it calls team=search.
    let (submitter, _) = ten_cents_per_ten_seconds_on(
        Client::builder(&fake.sdk_config().await).default_tag("team", "search"),
        ten_dollars_a_day_at_fifty_cents_a_job(),
    );
    let submitter = submitter.build().unwrap();
    // The settling process has no default tags, and an enforced day budget of
    // $10 on team=search.
    let team_search = || {
        Budget::enforce(
            BudgetScope::tag("team", "search"),
            BudgetPeriod::Day,
            dec("10"),
        )
        .unwrap()
        .estimate(Estimate::Fixed { usd: dec("0.50") })
        .unwrap()
    };
    let (settler, _) =
        ten_cents_per_ten_seconds_with(Client::builder(&fake.sdk_config().await), team_search());
    let submit = || {
        submitter
            .invoke_endpoint_async()
            .endpoint_name("jobs")
            .input_location("s3://fake-bucket/input/1.json")
            .input_bytes(1024)
            .tag("job", "nightly")
            .send()
    };
    let submitted = submit().await.unwrap();
    let search_and_nightly = |extra: &[(&str, &str)]| {
        let mut tags: std::collections::BTreeMap<String, String> = [
            ("job".to_owned(), "nightly".to_owned()),
            ("team".to_owned(), "search".to_owned()),
        ]
        .into();
        tags.extend(
            extra
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        );
        tags
    };
    assert_eq!(submitted.cost().tags, search_and_nightly(&[]));
    // Its record goes through a queue to the other process.
    let copy: sagemeter::client::PendingInference =
        serde_json::from_str(&serde_json::to_string(submitted.pending()).unwrap()).unwrap();
    let settled = settler
        .meter()
        .settle_async(
            copy,
            AsyncCompletion::processed_for(Duration::from_secs(10)),
        )
        .await
        .unwrap();
    // Its receipt is the submitter's team's, as the submission's was.
    assert_eq!(settled.cost_usd, dec("0.10"));
    assert_eq!(settled.tags, search_and_nightly(&[]));
    // Counted in team=search's budget there, unreserved: the $0.10 of compute
    // alone (the fee is on the submission receipt, charged where it was
    // submitted).
    assert_eq!(spent_held(&settler), (dec("0.10"), Decimal::ZERO));
    assert_eq!(
        settler.meter().totals().by_tag["team"]["search"],
        dec("0.10")
    );

    // A settler with default tags of its own adds the keys the record lacks
    // (host); on a clash (team) the record's win: the job is still search's,
    // and another $0.10 counts in team=search's budget, none in ops'.
    let (other, _) = ten_cents_per_ten_seconds_with(
        Client::builder(&fake.sdk_config().await)
            .default_tag("team", "ops")
            .default_tag("host", "worker-2"),
        team_search(),
    );
    let (_, _, pending) = submit().await.unwrap().into_parts();
    let settled = other
        .meter()
        .settle_async(
            pending,
            AsyncCompletion::processed_for(Duration::from_secs(10)),
        )
        .await
        .unwrap();
    assert_eq!(settled.tags, search_and_nightly(&[("host", "worker-2")]));
    assert_eq!(other.meter().budget_status()[0].spent_usd, dec("0.10"));
}

#[tokio::test]
async fn a_duplicate_settled_while_the_first_settlement_is_in_flight_leaves_it_the_hold() {
    let fake = fake().await;
    // `jobs`: $0.001 a submission (its fee; data free), 80 s of AsyncInf at
    // $36/h = 80 / 3,600 × 36 = $0.80 a settlement; $10 a day, $0.50 a job.
    let (client, _) = ten_cents_per_ten_seconds_with(
        Client::builder(&fake.sdk_config().await),
        ten_dollars_a_day_at_fifty_cents_a_job(),
    );
    let eighty_seconds = || AsyncCompletion::processed_for(Duration::from_secs(80));
    let copy_of = |pending: &sagemeter::client::PendingInference| {
        serde_json::from_str::<sagemeter::client::PendingInference>(
            &serde_json::to_string(pending).unwrap(),
        )
        .unwrap()
    };

    // Job `a`: its $0.001 fee spent, 0.50 − 0.001 = $0.499 held.
    let a = submit_async(&client, "jobs", 1024).await;
    assert_eq!(spent_held(&client), (dec("0.001"), dec("0.499")));
    // Its notification comes twice at once: the original and a copy are
    // settled together. The copy's is the duplicate, made before the first
    // is done: the hold stays held until the first settlement takes it over.
    let copy = copy_of(a.pending());
    let first = a.settle(eighty_seconds());
    let second = client.meter().settle_async(copy, eighty_seconds());
    assert_eq!(spent_held(&client), (dec("0.001"), dec("0.499")));
    let (first, second) = tokio::join!(first, second);
    let second = second.unwrap();
    assert_eq!(first.cost_usd, dec("0.80"));
    assert!(second.is_duplicate_settlement(), "{second:#?}");
    // The hold replaced by the settlement: 0.001 + 0.80 = $0.801, none held.
    assert_eq!(spent_held(&client), (dec("0.801"), Decimal::ZERO));

    // Job `b`: 0.801 + 0.001 = $0.802 spent, $0.499 held. A copy settled
    // first, the original (which holds the hold) second: the original's is
    // the duplicate, and must not take the hold from under the copy's.
    let (_, _, b) = submit_async(&client, "jobs", 1024).await.into_parts();
    assert_eq!(spent_held(&client), (dec("0.802"), dec("0.499")));
    let copy = copy_of(&b);
    let first = client.meter().settle_async(copy, eighty_seconds());
    let second = client.meter().settle_async(b, eighty_seconds());
    assert_eq!(spent_held(&client), (dec("0.802"), dec("0.499")));
    let (first, second) = tokio::join!(first, second);
    assert_eq!(first.unwrap().cost_usd, dec("0.80"));
    assert!(second.unwrap().is_duplicate_settlement());
    // 0.802 + 0.80 = $1.602, none held.
    assert_eq!(spent_held(&client), (dec("1.602"), Decimal::ZERO));
}

#[tokio::test]
async fn a_duplicate_settled_with_the_first_the_day_after_a_lapse_leaves_it_the_lapsed_charge() {
    let fake = fake().await;
    // 2027-01-15 08:00:00 UTC on the client's clock.
    // `jobs`: $0.001 a submission (its fee; data free), 80 s of AsyncInf at
    // $36/h = 80 / 3,600 × 36 = $0.80 a settlement; $10 a day, $0.50 a job.
    let (client, _, time) = ten_cents_per_ten_seconds_on_a_manual_clock(
        &fake,
        ten_dollars_a_day_at_fifty_cents_a_job(),
    )
    .await;
    // Day 1, 08:00: the fee spent, 0.50 − 0.001 = $0.499 held until
    // SageMaker's defaults run out, 6 h queued + 15 min to run = 14:15.
    let (_, _, original) = submit_async(&client, "jobs", 1024).await.into_parts();
    let copy = serde_json::to_string(&original).unwrap();
    assert_eq!(spent_held(&client), (dec("0.001"), dec("0.499")));
    // 14:15: the hold lapses and is charged as run: 0.001 + 0.499 = $0.50.
    time.advance(Duration::from_secs(22_500));
    assert_eq!(spent_held(&client), (dec("0.50"), Decimal::ZERO));
    // Day 2, 09:00 (14:15 + 9 h 45 min to midnight + 9 h = 67,500 s): a new
    // day, nothing spent yet.
    time.advance(Duration::from_secs(67_500));
    assert_eq!(spent_held(&client), (Decimal::ZERO, Decimal::ZERO));
    // Two copies of its notification settled together: $0.80. In the period
    // after the charge's, the settlement counts only what it passes the
    // charge by (the job counts at the more of the two, once): 0.80 − 0.499 =
    // $0.301 today. Had the duplicate taken the charge away first, the
    // settlement would count whole, $0.80 today beside the $0.499 of
    // yesterday.
    let settle_copy = || {
        let copy: sagemeter::client::PendingInference = serde_json::from_str(&copy).unwrap();
        client.meter().settle_async(
            copy,
            AsyncCompletion::processed_for(Duration::from_secs(80)),
        )
    };
    let (first, second) = tokio::join!(settle_copy(), settle_copy());
    assert_eq!(first.unwrap().cost_usd, dec("0.80"));
    assert!(second.unwrap().is_duplicate_settlement());
    assert_eq!(spent_held(&client), (dec("0.301"), Decimal::ZERO));
    // The original, dropped now, changes nothing.
    drop(original);
    assert_eq!(spent_held(&client), (dec("0.301"), Decimal::ZERO));
}

#[tokio::test]
async fn an_async_request_that_expired_in_the_queue_settles_fully_priced_at_nothing() {
    use sagemeter::billing::LineItem;
    let fake = fake().await;
    // `jobs` as `ten_cents_per_ten_seconds` has it ($36/h of AsyncInf, $1 per
    // 1,000 submissions, data in free), but data out priced at us-east-1's
    // $0.016 a GB; $1 a day, each job estimated at a fixed $0.50.
    let budget = daily("jobs", "1", "0.50");
    let (builder, _) =
        ten_cents_per_ten_seconds_on(Client::builder(&fake.sdk_config().await), budget);
    let client = builder
        .price_override(
            PriceKey::DataOut {
                region: "us-east-1".to_owned(),
            },
            dec("0.016"),
        )
        .build()
        .unwrap();
    // Submitted: the $0.001 fee, fully priced; 0.50 − 0.001 = $0.499 held.
    let submitted = submit_async(&client, "jobs", 1024).await;
    assert!(
        submitted.cost().is_fully_priced(),
        "{:#?}",
        submitted.cost()
    );
    assert_eq!(
        spent_held_unpriced(&client),
        (dec("0.001"), dec("0.499"), 0)
    );
    // Its TTL passed in the queue: the model never saw it, and it wrote no
    // output. 0 s × $36/h = $0 of compute, 0 bytes × $0.016/GB = $0 out.
    let settled = submitted.settle(AsyncCompletion::expired()).await;
    assert!(settled.is_fully_priced(), "{settled:#?}");
    assert_eq!(settled.cost_usd, Decimal::ZERO);
    assert_eq!(settled.usage.outcome, sagemeter::usage::Outcome::Error);
    assert_eq!(settled.usage.latency, Duration::ZERO);
    let data_out = settled
        .lines
        .iter()
        .find(|l| l.item == LineItem::DataOut)
        .expect("a data-out line");
    assert_eq!(data_out.quantity, Decimal::ZERO);
    assert_eq!(data_out.cost_usd(), Some(Decimal::ZERO));
    // The job counts its fee alone: $0.001, nothing held, none unpriced.
    assert_eq!(
        spent_held_unpriced(&client),
        (dec("0.001"), Decimal::ZERO, 0)
    );

    // Settled stating no output size instead, data out is unpriced (a failed
    // job may have written a failure object of any size), and the job counts
    // at no less than its estimate: 0.001 + max(0, 0.499 held) = $0.50, so
    // spent 0.001 + 0.001 + 0.499 = $0.501.
    let submitted = submit_async(&client, "jobs", 1024).await;
    let settled = submitted
        .settle(AsyncCompletion::processed_for(Duration::ZERO).failed())
        .await;
    assert!(!settled.is_fully_priced(), "{settled:#?}");
    assert_eq!(
        spent_held_unpriced(&client),
        (dec("0.501"), Decimal::ZERO, 1)
    );
}

#[tokio::test]
async fn an_expired_request_settles_at_nothing_fully_priced_even_when_its_endpoint_cannot_be_described()
 {
    let fake = fake().await;
    // The settling process may not describe the endpoint (no
    // sagemaker:DescribeEndpoint, or the endpoint deleted since its jobs
    // expired): its profile, and so its compute rate, are not known.
    *fake.state.describe_error.lock().unwrap() = Some("AccessDeniedException".into());
    // `jobs` with discovery on: $1 per 1,000 submissions, data in free, data
    // out at us-east-1's $0.016 a GB, no price source; $1 a day, each job
    // estimated at a fixed $0.50.
    let r = "us-east-1".to_owned();
    let client = Client::builder(&fake.sdk_config().await)
        .price_source(NoPrices)
        .free_of_charge(PriceKey::DataIn { region: r.clone() })
        .price_override(PriceKey::DataOut { region: r }, dec("0.016"))
        .usage_charges("jobs", UsageCharges::default().per_1000_calls(Decimal::ONE))
        .budget(daily("jobs", "1", "0.50"))
        .build()
        .unwrap();
    // Submitted: the $0.001 fee, fully priced (a submission bills no
    // compute); 0.50 − 0.001 = $0.499 held.
    let submitted = submit_async(&client, "jobs", 1024).await;
    assert!(
        submitted.cost().is_fully_priced(),
        "{:#?}",
        submitted.cost()
    );
    assert_eq!(
        spent_held_unpriced(&client),
        (dec("0.001"), dec("0.499"), 0)
    );
    // Expired in the queue: 0 s of compute and 0 bytes out need no rate, 0 ×
    // any rate = $0. Before, the compute line was unpriced (the profile's
    // error) and the job counted at its $0.50 estimate, one unpriced call.
    let settled = submitted.settle(AsyncCompletion::expired()).await;
    assert!(settled.is_fully_priced(), "{settled:#?}");
    assert_eq!(settled.cost_usd, Decimal::ZERO);
    // The job counts its fee alone: $0.001, nothing held, none unpriced.
    assert_eq!(
        spent_held_unpriced(&client),
        (dec("0.001"), Decimal::ZERO, 0)
    );
    assert_eq!(client.meter().totals().unpriced_calls, 0);

    // Nor does a stated 0 bytes out need a data-out rate: with no price for
    // it at all (none set, no price source), an expired request is still
    // fully priced at $0.
    let client = Client::builder(&fake.sdk_config().await)
        .price_source(NoPrices)
        .usage_charges("jobs", UsageCharges::default().per_1000_calls(Decimal::ONE))
        .build()
        .unwrap();
    let settled = submit_async(&client, "jobs", 0)
        .await
        .settle(AsyncCompletion::expired())
        .await;
    assert!(settled.is_fully_priced(), "{settled:#?}");
    assert_eq!(settled.cost_usd, Decimal::ZERO);
}

/// `jobs` as [`ten_cents_per_ten_seconds`] has it, under $10 a day with each job
/// estimated at a fixed $0.50, on a clock at 2027-01-15 08:00:00 UTC, its
/// alerts (threshold, spent) recorded.
async fn ten_dollars_a_day_of_jobs_on_a_clock(
    fake: &FakeSageMaker,
    on_alert: impl Fn(&sagemeter::budget::BudgetAlert) + Send + Sync + 'static,
) -> (Client, ManualTimeSource) {
    let time = ManualTimeSource::new(UNIX_EPOCH + Duration::from_secs(1_800_000_000));
    let builder =
        Client::builder(&fake.sdk_config().await).time_source(SharedTimeSource::new(time.clone()));
    let budget = ten_dollars_a_day_at_fifty_cents_a_job().on_alert(on_alert);
    let (client, _) = ten_cents_per_ten_seconds_with(builder, budget);
    (client, time)
}

#[tokio::test]
async fn a_batch_that_drops_its_lapsed_jobs_and_shuts_down_sees_their_alerts() {
    let fake = fake().await;
    let raised = Arc::new(Mutex::new(Vec::new()));
    let seen = raised.clone();
    let (client, time) = ten_dollars_a_day_of_jobs_on_a_clock(&fake, move |a| {
        seen.lock()
            .unwrap()
            .push((a.threshold_percent, a.spent_usd));
    })
    .await;
    // 08:00: 20 jobs, each its $0.001 fee spent and 0.50 − 0.001 = $0.499
    // held: 20 × 0.50 = $10, the whole limit; 20 × 0.001 = $0.02 spent, no
    // threshold passed. Their holds lapse at 14:15 (SageMaker's defaults: 6 h
    // in its queue + 15 min to run = 22,500 s).
    let mut pending = Vec::new();
    for _ in 0..20 {
        pending.push(submit_async(&client, "jobs", 1024).await.into_parts().2);
    }
    assert!(raised.lock().unwrap().is_empty());
    // 14:16: the batch gives up on them and drops them, nothing having looked
    // at the budgets since 08:00, then shuts down.
    time.advance(Duration::from_secs(22_560));
    drop(pending);
    assert!(raised.lock().unwrap().is_empty(), "not in the drop");
    client
        .meter()
        .shutdown_within(Duration::from_secs(1))
        .await
        .unwrap();
    // The shutdown raises what the drops charged, one hold at a time on top
    // of the $0.02 of fees: 0.02 + 10 × 0.499 = $5.01 passes 50 % of $10
    // ($5), 0.02 + 16 × 0.499 = $8.004 passes 80 % ($8), 0.02 + 20 × 0.499
    // = $10.00 reaches 100 %. (Before, nothing: they waited for a call or a
    // status that never came.)
    assert_eq!(
        std::mem::take(&mut *raised.lock().unwrap()),
        vec![(50, dec("5.01")), (80, dec("8.004")), (100, dec("10.00"))]
    );
    let status = &client.meter().budget_status()[0];
    assert_eq!(
        (status.spent_usd, status.reserved_usd),
        (dec("10"), Decimal::ZERO)
    );
    assert!(raised.lock().unwrap().is_empty(), "raised once");
}

/// 20 jobs of `jobs` submitted (filling a $10 budget), then dropped pending
/// once their holds have lapsed (22,560 s on `time`).
async fn twenty_jobs_dropped_after_their_lapse(client: &Client, time: &ManualTimeSource) {
    let mut pending = Vec::new();
    for _ in 0..20 {
        pending.push(submit_async(client, "jobs", 1024).await.into_parts().2);
    }
    time.advance(Duration::from_secs(22_560));
    drop(pending);
}

#[tokio::test]
async fn an_alert_callback_that_blocks_at_shutdown_does_not_hold_it_past_its_timeout() {
    let fake = fake().await;
    // The callback blocks until the test lets it go.
    let (release, blocked) = std::sync::mpsc::channel::<()>();
    let blocked = Mutex::new(blocked);
    let (client, time) = ten_dollars_a_day_of_jobs_on_a_clock(&fake, move |_| {
        let _ = blocked.lock().unwrap().recv();
    })
    .await;
    // 20 jobs fill the $10; dropped after their lapse, their charges pass 50,
    // 80 and 100 %, raised at the shutdown.
    twenty_jobs_dropped_after_their_lapse(&client, &time).await;
    // Over within its 1 s (and a margin), the callback still blocked, saying
    // so: the alerts are raised within the half the calls in flight have.
    let began = std::time::Instant::now();
    let shut = client.meter().shutdown_within(Duration::from_secs(1)).await;
    let took = began.elapsed();
    assert!(took < Duration::from_millis(1_250), "{took:?}");
    let problem = shut.unwrap_err().to_string();
    assert!(
        problem.contains("alert callbacks still running"),
        "{problem}"
    );
    drop(release);
}

/// The runtime ends without waiting for an alert callback the shutdown gave up
/// on: a process whose callback posts to a webhook that hangs still exits once
/// `shutdown_within` returns, rather than when the callback does.
#[test]
fn an_alert_callback_the_shutdown_gave_up_on_does_not_keep_the_runtime_from_ending() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (release, blocked) = std::sync::mpsc::channel::<()>();
    let blocked = Mutex::new(blocked);
    runtime.block_on(async move {
        let fake = fake().await;
        let (client, time) = ten_dollars_a_day_of_jobs_on_a_clock(&fake, move |_| {
            let _ = blocked.lock().unwrap().recv();
        })
        .await;
        // As above: 20 jobs dropped after their lapse, their alerts raised at
        // the shutdown, the first callback blocked.
        twenty_jobs_dropped_after_their_lapse(&client, &time).await;
        let shut = client.meter().shutdown_within(Duration::from_secs(1)).await;
        let problem = shut.unwrap_err().to_string();
        assert!(
            problem.contains("alert callbacks still running"),
            "{problem}"
        );
    });
    // The callback stays blocked 5 s more (a webhook's timeout); not joined.
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_secs(5));
        drop(release);
    });
    let began = std::time::Instant::now();
    drop(runtime);
    let took = began.elapsed();
    // Not a speed target: well under the callback's 5 s, a margin for a slow
    // machine (the runtime waited for the callback, all 5 s, before).
    assert!(took < Duration::from_secs(3), "{took:?}");
}
