//! Endpoints whose standing capacity goes away and comes back while a process
//! runs (provisioned concurrency removed, an instance variant moved to
//! serverless), and calls answered while the profile shows no instance.
//!
//! Every expected figure is worked by hand from the rates stated here: AWS's
//! us-east-1 prices, ml.g5.xlarge $1.408 per instance-hour; serverless 2 GB
//! $0.00004 per second on demand; provisioned concurrency (2 GB) $0.00001 per
//! second provisioned, $0.0000233 per second of inference.

use crate::support::fake_sagemaker::{FakeSageMaker, FakeVariant};
use crate::support::{call, manual_clock};
use aws_smithy_async::test_util::ManualTimeSource;
use aws_smithy_async::time::SharedTimeSource;
use rust_decimal::Decimal;
use sagemeter::billing::{LineItem, LinePrice};
use sagemeter::pricing::{
    BoxFuture, PriceError, PriceKey, PriceOrigin, PriceSource, Provenance, Rate,
};
use sagemeter::{Client, Cost};
use std::collections::HashMap;
use std::time::Duration;

fn dec(s: &str) -> Decimal {
    s.parse().unwrap()
}

const REGION: &str = "us-east-1";

/// Fixed live rates, every one at hand at once.
#[derive(Debug)]
struct Prices(HashMap<PriceKey, Decimal>);

impl Prices {
    fn us_east_1() -> Self {
        let region = || REGION.to_owned();
        Prices(HashMap::from([
            (PriceKey::hosting(REGION, "ml.g5.xlarge"), dec("1.408")),
            (PriceKey::DataIn { region: region() }, dec("0.016")),
            (PriceKey::DataOut { region: region() }, dec("0.016")),
            (PriceKey::serverless(REGION, 2), dec("0.00004")),
            (
                PriceKey::ProvisionedConcurrency {
                    region: region(),
                    memory_gb: 2,
                },
                dec("0.00001"),
            ),
            (
                PriceKey::ProvisionedConcurrencyUsage {
                    region: region(),
                    memory_gb: 2,
                },
                dec("0.0000233"),
            ),
        ]))
    }

    fn rate(&self, key: &PriceKey) -> Result<Rate, PriceError> {
        self.0
            .get(key)
            .map(|usd| Rate::new(key.clone(), *usd, Provenance::new(PriceOrigin::Live)))
            .ok_or(PriceError::NotFound { key: key.clone() })
    }
}

impl PriceSource for Prices {
    fn price<'a>(&'a self, key: &'a PriceKey) -> BoxFuture<'a, Result<Rate, PriceError>> {
        Box::pin(async move { self.rate(key) })
    }
    fn price_now(&self, key: &PriceKey) -> Option<Result<Rate, PriceError>> {
        Some(self.rate(key))
    }
}

/// A call the fake holds while the manual clock moves `held` on.
async fn held_call(
    fake: &FakeSageMaker,
    client: &Client,
    time: &ManualTimeSource,
    endpoint: &str,
    held: Duration,
) -> Cost {
    let before = fake.invocations();
    fake.hold();
    let running = tokio::spawn({
        let client = client.clone();
        let endpoint = endpoint.to_owned();
        async move { call(&client, &endpoint).await }
    });
    fake.wait_for_invocations(before + 1).await;
    time.advance(held);
    fake.release();
    running.await.unwrap()
}

/// Waits until the fake has been described `n` times and the refresh it started
/// has been applied.
async fn refreshed(fake: &FakeSageMaker, client: &Client, n: u64) -> bool {
    for _ in 0..500 {
        if fake.describe_calls() >= n && client.meter().background_tasks() == 0 {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    false
}

/// Deploys `variants` as endpoint `name`, once no refresh the calls started is
/// in flight (one that lands after the clock moves on would count as fresh).
async fn redeploy(fake: &FakeSageMaker, client: &Client, name: &str, variants: Vec<FakeVariant>) {
    assert!(
        refreshed(fake, client, 0).await,
        "a refresh still in flight"
    );
    fake.add_endpoint(name, variants);
}

/// Moves the clock `by` on and waits for the refresh that sees the endpoint as
/// the fake now describes it.
async fn advance_and_refresh(
    fake: &FakeSageMaker,
    client: &Client,
    time: &ManualTimeSource,
    by: Duration,
) {
    let n = fake.describe_calls();
    time.advance(by);
    assert!(refreshed(fake, client, n + 1).await, "no refresh");
}

async fn refreshing_client(fake: &FakeSageMaker, time: SharedTimeSource) -> Client {
    Client::builder(&fake.sdk_config().await)
        .price_source(Prices::us_east_1())
        .discovery_refresh(Duration::from_millis(100))
        .time_source(time)
        .build()
        .unwrap()
}

fn serverless_2gb(provisioned: Option<u32>) -> Vec<FakeVariant> {
    let mut variant = FakeVariant::serverless("AllTraffic", 2048);
    variant.provisioned_concurrency = provisioned;
    vec![variant]
}

fn compute(cost: &Cost) -> &sagemeter::billing::CostLine {
    cost.lines
        .iter()
        .find(|l| l.item == LineItem::Compute)
        .expect("a compute line")
}

/// Provisioned concurrency 2 at t = 0; the endpoint updated to a config without
/// it, seen at t = 60 s; put back, seen at t = 36,061 s; a call at t = 36,120 s.
/// AWS bills the standing charge only while concurrency is provisioned: the 10 h
/// between cost nothing standing.
#[tokio::test]
async fn provisioned_concurrency_removed_then_restored_accrues_nothing_between() {
    let fake = FakeSageMaker::start().await;
    fake.add_endpoint("pc", serverless_2gb(Some(2)));
    let (time, shared) = manual_clock();
    let client = refreshing_client(&fake, shared).await;
    // t = 0: a call on the provisioned concurrency (billed by its own latency,
    // which the fake makes a few milliseconds).
    let first = call(&client, "pc").await;
    let first_compute = compute(&first).cost_usd().expect("priced");

    redeploy(&fake, &client, "pc", serverless_2gb(None)).await;
    advance_and_refresh(&fake, &client, &time, Duration::from_secs(60)).await; // t = 60 s

    // t = 3,660 s: served on demand; nothing standing, so no accrual on its receipt.
    time.advance(Duration::from_secs(3600));
    let between = call(&client, "pc").await;
    assert!(between.accrual.is_none(), "{:?}", between.accrual);
    assert!(
        matches!(compute(&between).price, LinePrice::Priced { usd_per_unit, .. } if usd_per_unit == dec("0.00004")),
        "{:?}",
        compute(&between)
    );

    redeploy(&fake, &client, "pc", serverless_2gb(Some(2))).await;
    advance_and_refresh(&fake, &client, &time, Duration::from_secs(32_401)).await; // t = 36,061 s
    time.advance(Duration::from_secs(59)); // t = 36,120 s
    let last = call(&client, "pc").await;
    let accrual = last.accrual.clone().expect("an accrual");
    // By hand: PC 2 stood from 0 to 60 s and from 36,061 s to 36,120 s:
    // (60 + 59) s × 2 × $0.00001/s = $0.00238 (the 10 h without PC cost nothing).
    assert_eq!(accrual.accrued_usd, dec("119") * dec("2") * dec("0.00001"));
    // Allocated: the two calls the provisioned concurrency served, not the one
    // served on demand between; utilisation = allocated ÷ accrued, at most 1.
    let last_compute = compute(&last).cost_usd().expect("priced");
    assert_eq!(accrual.allocated_usd, first_compute + last_compute);
    assert_eq!(
        accrual.utilisation,
        Some((accrual.allocated_usd / accrual.accrued_usd).round_dp(6))
    );
    assert!(accrual.utilisation <= Some(Decimal::ONE));
}

/// One ml.g5.xlarge at t = 0 (a call held 36 s); the endpoint updated to
/// serverless without provisioned concurrency, seen at t = 60 s; back to one
/// instance, seen at t = 36,061 s; a call at t = 36,120 s. The 10 h on serverless
/// cost no instance.
#[tokio::test]
async fn instance_variant_moved_to_serverless_and_back_accrues_nothing_between() {
    let fake = FakeSageMaker::start().await;
    let one_instance = || vec![FakeVariant::instance("AllTraffic", "ml.g5.xlarge", 1)];
    fake.add_endpoint("rt", one_instance());
    let (time, shared) = manual_clock();
    let client = refreshing_client(&fake, shared).await;
    held_call(&fake, &client, &time, "rt", Duration::from_secs(36)).await;

    redeploy(&fake, &client, "rt", serverless_2gb(None)).await;
    advance_and_refresh(&fake, &client, &time, Duration::from_secs(24)).await; // t = 60 s

    time.advance(Duration::from_secs(3600));
    let between = call(&client, "rt").await;
    assert!(between.accrual.is_none(), "{:?}", between.accrual);

    redeploy(&fake, &client, "rt", one_instance()).await;
    advance_and_refresh(&fake, &client, &time, Duration::from_secs(32_401)).await; // t = 36,061 s
    time.advance(Duration::from_secs(59)); // t = 36,120 s
    let last = call(&client, "rt").await;
    let accrual = last.accrual.expect("an accrual");
    // By hand: one instance from 0 to 60 s and from 36,061 s to 36,120 s:
    // 119 s × $1.408/h ÷ 3600 = $0.046542222222… (12 places, half to even).
    assert_eq!(
        accrual.accrued_usd,
        (dec("119") * dec("1.408") / dec("3600")).round_dp(12)
    );
    // The first call alone on the instance for 36 s: 0.01 h × $1.408 = $0.01408;
    // 36 s of 119 s accrued: 0.302521 (6 places).
    assert_eq!(accrual.allocated_usd, dec("0.01408"));
    assert_eq!(accrual.utilisation, Some(dec("0.302521")));
}

/// Whether `cost` carries the note of a profile that shows no instance of the
/// variant that served it.
fn says_no_instance(cost: &Cost) -> bool {
    cost.notes.iter().any(|n| {
        n.contains("shows no instance of variant `AllTraffic`")
            && n.contains("the accrual has nothing for it until a refresh finds the instances")
    })
}

/// A call held 36 s on a variant whose profile shows 0 × ml.g5.xlarge (scaled to
/// zero when described, an instance up since, DescribeEndpoint lagging). The
/// call is priced as one alone on an instance; the accrual, at what the profile
/// shows, has nothing for it (no instance is made up), and the receipt says so.
/// The profile is described again, but not more than once per 10 s however many
/// such calls come; once a refresh finds the instance, it accrues from then.
#[tokio::test]
async fn a_call_served_while_the_profile_shows_no_instance_says_so_and_refreshes_at_most_every_10_s()
 {
    let fake = FakeSageMaker::start().await;
    fake.add_endpoint(
        "rt",
        vec![FakeVariant::instance("AllTraffic", "ml.g5.xlarge", 0)],
    );
    let (time, shared) = manual_clock();
    // discovery_refresh at its default, 60 s: the 10 s are the call's trigger's.
    let client = Client::builder(&fake.sdk_config().await)
        .price_source(Prices::us_east_1())
        .time_source(shared)
        .build()
        .unwrap();
    // Described at t = 0 (a call's own discovery may land while it is held).
    client.meter().endpoint_profile("rt").await.unwrap();
    assert_eq!(fake.describe_calls(), 1);
    // t = 0 to 36 s.
    let cost = held_call(&fake, &client, &time, "rt", Duration::from_secs(36)).await;
    // By hand: alone on the instance for 36 s = 0.01 h × $1.408/h = $0.01408.
    assert_eq!(compute(&cost).cost_usd(), Some(dec("0.01") * dec("1.408")));
    let accrual = cost.accrual.clone().expect("an accrual");
    // The accrual counts the 0 instances the profile shows: $0, and no
    // utilisation of it (not 0, not a division by 0).
    assert_eq!(accrual.accrued_usd, Decimal::ZERO);
    assert_eq!(accrual.allocated_usd, dec("0.01408"));
    assert_eq!(accrual.utilisation, None);
    assert!(says_no_instance(&cost), "{:?}", cost.notes);
    // The profile, 36 s old, is described again.
    assert!(refreshed(&fake, &client, 2).await, "no refresh");
    assert_eq!(fake.describe_calls(), 2);

    // Still 0 (DescribeEndpoint lags): 5 calls in a row at t = 36 s, each once
    // the one before has landed, describe nothing more: the profile is 0 s old.
    for _ in 0..5 {
        let cost = call(&client, "rt").await;
        assert!(says_no_instance(&cost), "{:?}", cost.notes);
        assert_eq!(cost.accrual.expect("an accrual").accrued_usd, Decimal::ZERO);
        assert!(refreshed(&fake, &client, 0).await, "a refresh stuck");
    }
    time.advance(Duration::from_secs(9)); // t = 45 s: 9 s old, still not.
    call(&client, "rt").await;
    assert!(refreshed(&fake, &client, 0).await, "a refresh stuck");
    assert_eq!(fake.describe_calls(), 2, "described again within 10 s");

    // The instance shows at last; t = 46 s, 10 s on: a call has it described.
    fake.set_instance_count("rt", "AllTraffic", 1);
    time.advance(Duration::from_secs(1));
    call(&client, "rt").await;
    assert!(refreshed(&fake, &client, 3).await, "no refresh after 10 s");
    assert_eq!(fake.describe_calls(), 3);
    // t = 46 s to 82 s, a call held 36 s: one instance from the refresh at 46 s,
    // 36 s × $1.408/h ÷ 3600 = $0.01408 accrued in all; no note.
    let last = held_call(&fake, &client, &time, "rt", Duration::from_secs(36)).await;
    assert!(!says_no_instance(&last), "{:?}", last.notes);
    let accrual = last.accrual.expect("an accrual");
    assert_eq!(accrual.accrued_usd, dec("36") * dec("1.408") / dec("3600"));
}

/// An asynchronous endpoint at 1 × ml.g5.xlarge. Job A (60 s of processing) is
/// settled at t = 60 s, which starts this process's accrual at t = 0; the
/// endpoint scales to zero, seen by a refresh at t = 660 s; job J is settled late,
/// at t = 900 s, for 600 s of processing (stated from the settlement: 300 s to
/// 900 s). J's processing was accrued, if at all, at the instances standing then:
/// the late settlement adds no instance of its own over it.
#[tokio::test]
async fn a_late_settlement_while_the_profile_shows_no_instance_adds_nothing_to_the_accrual() {
    let fake = FakeSageMaker::start().await;
    fake.add_endpoint(
        "rt",
        vec![FakeVariant::instance("AllTraffic", "ml.g5.xlarge", 1)],
    );
    let (time, shared) = manual_clock();
    let client = refreshing_client(&fake, shared).await;
    let pending = |submitted: &sagemeter::client::AsyncInvocation| {
        let copy = serde_json::to_string(submitted.pending()).unwrap();
        serde_json::from_str::<sagemeter::client::PendingInference>(&copy).unwrap()
    };
    let settle = |pending, processed: u64| {
        let meter = client.meter().clone();
        async move {
            meter
                .settle_async(
                    pending,
                    sagemeter::client::AsyncCompletion::processed_for(Duration::from_secs(
                        processed,
                    ))
                    .output_bytes(10),
                )
                .await
                .unwrap()
        }
    };
    // t = 0: both submitted.
    let a = pending(&crate::support::submit_async(&client, "rt", 1024).await);
    let j = pending(&crate::support::submit_async(&client, "rt", 1024).await);
    time.advance(Duration::from_secs(60));
    let settled_a = settle(a, 60).await;
    // By hand: 60 s at one instance = 60 × 1.408 / 3600 = $0.023466666667.
    assert_eq!(
        settled_a.accrual.expect("an accrual").accrued_usd,
        (dec("60") * dec("1.408") / dec("3600")).round_dp(12)
    );
    assert!(refreshed(&fake, &client, 0).await, "a refresh stuck");
    fake.set_instance_count("rt", "AllTraffic", 0);
    advance_and_refresh(&fake, &client, &time, Duration::from_secs(600)).await; // t = 660 s
    time.advance(Duration::from_secs(240)); // t = 900 s
    let settled_j = settle(j, 600).await;
    // J's compute is billed: 600 s at a whole instance = $0.234666666667.
    assert_eq!(
        compute(&settled_j).cost_usd(),
        Some((dec("600") / dec("3600") * dec("1.408")).round_dp(12))
    );
    // By hand: one instance from t = 0 to the refresh at t = 660 s, nothing since:
    // 660 × 1.408 / 3600 = 929.28 / 3600 = $0.258133333333 (12 places). Not
    // 660 + 600 s = $0.4928: J's 600 s are not counted again.
    let accrual = settled_j.accrual.clone().expect("an accrual");
    assert_eq!(accrual.accrued_usd, dec("0.258133333333"));
    assert!(says_no_instance(&settled_j), "{:?}", settled_j.notes);
}

/// Amortised, a call carries what the accrual added since the previous call:
/// on a variant whose profile shows no instance, nothing, which is not what the
/// instance that served it cost. Its compute is unpriced, saying why, not $0.
#[tokio::test]
async fn an_amortized_call_while_the_profile_shows_no_instance_is_unpriced_not_zero() {
    let fake = FakeSageMaker::start().await;
    fake.add_endpoint(
        "rt",
        vec![FakeVariant::instance("AllTraffic", "ml.g5.xlarge", 0)],
    );
    let (time, shared) = manual_clock();
    let client = Client::builder(&fake.sdk_config().await)
        .price_source(Prices::us_east_1())
        .allocation(sagemeter::billing::Allocation::Amortized)
        .time_source(shared)
        .build()
        .unwrap();
    // The first call is billed at busy time (its own latency).
    let first = held_call(&fake, &client, &time, "rt", Duration::from_secs(36)).await;
    assert!(first.is_fully_priced(), "{:?}", first.lines);
    time.advance(Duration::from_secs(5));
    let second = held_call(&fake, &client, &time, "rt", Duration::from_secs(36)).await;
    match &compute(&second).price {
        LinePrice::Unpriced { reason } => assert!(
            reason.contains("shows no instance of variant `AllTraffic`"),
            "{reason}"
        ),
        priced => panic!("a call at no instance priced: {priced:?}"),
    }
    assert!(!second.is_fully_priced());
}

/// [`Prices::us_east_1`], but with no price for hosting until `known` is set.
#[derive(Debug)]
struct HostingPricedLater {
    known: std::sync::Arc<std::sync::atomic::AtomicBool>,
    prices: Prices,
}

impl HostingPricedLater {
    fn rate(&self, key: &PriceKey) -> Result<Rate, PriceError> {
        let known = self.known.load(std::sync::atomic::Ordering::SeqCst);
        match key {
            PriceKey::Hosting { .. } if !known => Err(PriceError::NotFound { key: key.clone() }),
            _ => self.prices.rate(key),
        }
    }
}

impl PriceSource for HostingPricedLater {
    fn price<'a>(&'a self, key: &'a PriceKey) -> BoxFuture<'a, Result<Rate, PriceError>> {
        Box::pin(async move { self.rate(key) })
    }
    fn price_now(&self, key: &PriceKey) -> Option<Result<Rate, PriceError>> {
        Some(self.rate(key))
    }
}

/// Amortised, the first call priced after unpriced ones carries the wall-clock
/// gap since the previous call at its instances: on a variant whose profile
/// shows none, 0 instance-hours, which is not what the instance that served it
/// cost. Its compute is unpriced, saying why, not a priced $0.
///
/// 1 × ml.g5.xlarge at no known price; call U from 0 to 1 s (unpriced); a
/// refresh at 30 s finds 0 instances and the price, $1.408/h; call P from 60 to
/// 61 s: its gap is 60 s × 0 instances = 0 instance-hours, at $1.408 = $0.
#[tokio::test]
async fn an_amortized_gap_while_the_profile_shows_no_instance_is_unpriced_not_zero() {
    let fake = FakeSageMaker::start().await;
    fake.add_endpoint(
        "rt",
        vec![FakeVariant::instance("AllTraffic", "ml.g5.xlarge", 1)],
    );
    let known = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let prices = HostingPricedLater {
        known: known.clone(),
        prices: Prices::us_east_1(),
    };
    let (time, shared) = manual_clock();
    let client = Client::builder(&fake.sdk_config().await)
        .price_source(prices)
        .allocation(sagemeter::billing::Allocation::Amortized)
        .discovery_refresh(Duration::from_millis(100))
        .time_source(shared)
        .build()
        .unwrap();
    client.meter().endpoint_profile("rt").await.unwrap();
    let unpriced = held_call(&fake, &client, &time, "rt", Duration::from_secs(1)).await;
    assert!(
        matches!(compute(&unpriced).price, LinePrice::Unpriced { .. }),
        "{:?}",
        unpriced.lines
    );
    assert!(refreshed(&fake, &client, 0).await, "a refresh stuck");
    fake.set_instance_count("rt", "AllTraffic", 0);
    known.store(true, std::sync::atomic::Ordering::SeqCst);
    advance_and_refresh(&fake, &client, &time, Duration::from_secs(29)).await; // t = 30 s
    time.advance(Duration::from_secs(30)); // t = 60 s
    let priced = held_call(&fake, &client, &time, "rt", Duration::from_secs(1)).await;
    assert!(says_no_instance(&priced), "{:?}", priced.notes);
    match &compute(&priced).price {
        LinePrice::Unpriced { reason } => assert!(
            reason.contains("shows no instance of variant `AllTraffic`"),
            "{reason}"
        ),
        priced => panic!("a gap at no instance priced: {priced:?}"),
    }
    assert!(!priced.is_fully_priced());
}
