//! The accrual (what a variant's standing capacity costs while it is metered)
//! against autoscaling, blue/green deployments and the provenance of its rates,
//! through the real SDK stack and the in-process SageMaker fake.
//!
//! Every expected figure is worked by hand from the rates stated here, AWS's
//! us-east-1 on-demand prices: ml.g5.xlarge $1.408 per instance-hour,
//! ml.g5.12xlarge $7.09.

use crate::support::fake_sagemaker::{FakeSageMaker, FakeVariant};
use crate::support::intercepted;
use crate::support::{call, manual_clock};
use aws_sdk_sagemakerruntime::primitives::Blob;
use aws_smithy_async::time::SharedTimeSource;
use rust_decimal::Decimal;
use sagemeter::billing::{LineItem, LinePrice};
use sagemeter::ledger::JsonlLedger;
use sagemeter::pricing::{
    BoxFuture, PriceError, PriceKey, PriceOrigin, PriceSource, Provenance, Rate, Snapshot,
};
use sagemeter::{Client, Cost};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

fn dec(s: &str) -> Decimal {
    s.parse().unwrap()
}

const REGION: &str = "us-east-1";

/// Fixed rates, each with the origin a test gives it; every one at hand at once.
#[derive(Debug)]
struct Prices(HashMap<PriceKey, (Decimal, PriceOrigin)>);

impl Prices {
    /// ml.g5.xlarge and ml.g5.12xlarge hosting and data processing, all live.
    fn us_east_1() -> Self {
        let live = |usd: &str| (dec(usd), PriceOrigin::Live);
        Prices(HashMap::from([
            (PriceKey::hosting(REGION, "ml.g5.xlarge"), live("1.408")),
            (PriceKey::hosting(REGION, "ml.g5.12xlarge"), live("7.09")),
            (
                PriceKey::DataIn {
                    region: REGION.into(),
                },
                live("0.016"),
            ),
            (
                PriceKey::DataOut {
                    region: REGION.into(),
                },
                live("0.016"),
            ),
        ]))
    }

    fn rate(&self, key: &PriceKey) -> Result<Rate, PriceError> {
        self.0
            .get(key)
            .map(|(usd, origin)| Rate::new(key.clone(), *usd, Provenance::new(*origin)))
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

fn compute(cost: &Cost) -> &sagemeter::billing::CostLine {
    cost.lines
        .iter()
        .find(|l| l.item == LineItem::Compute)
        .expect("a compute line")
}

/// A fake SageMaker with endpoint `rt`: one variant, `AllTraffic`, on
/// `instances` ml.g5.xlarge.
async fn g5_endpoint(instances: u32) -> FakeSageMaker {
    let fake = FakeSageMaker::start().await;
    put_g5(&fake, instances);
    fake
}

/// Puts `rt` on `fake` (again, or anew): one variant, `AllTraffic`, on
/// `instances` ml.g5.xlarge.
fn put_g5(fake: &FakeSageMaker, instances: u32) {
    fake.add_endpoint(
        "rt",
        vec![FakeVariant::instance(
            "AllTraffic",
            "ml.g5.xlarge",
            instances,
        )],
    );
}

/// Waits (a few seconds at most) until `fake` has been described `n` times and
/// the meter's background work (the refresh, and applying what it found) is
/// done; returns whether it was.
async fn refreshed(fake: &FakeSageMaker, client: &Client, n: u64) -> bool {
    for _ in 0..500 {
        if fake.describe_calls() >= n && client.meter().background_tasks() == 0 {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    false
}

/// A client of `fake` on the meter's clock `time` whose profiles are refreshed
/// every 100 ms of real time (a refresh loop runs while no call comes).
async fn refreshing_client(fake: &FakeSageMaker, time: SharedTimeSource) -> Client {
    refreshing(&fake.sdk_config().await, time).build().unwrap()
}

/// The builder of a [`refreshing_client`] of `conf`, for a test to add to.
fn refreshing(conf: &aws_types::SdkConfig, time: SharedTimeSource) -> sagemeter::ClientBuilder {
    Client::builder(conf)
        .price_source(Prices::us_east_1())
        .discovery_refresh(Duration::from_millis(100))
        .time_source(time)
}

/// t = 60 s on `time`: `rt` is deleted, and the refresh loop finds it gone (the
/// 2nd DescribeEndpoint).
async fn deleted_at_60_s(
    fake: &FakeSageMaker,
    time: &aws_smithy_async::test_util::ManualTimeSource,
    client: &Client,
) {
    fake.remove_endpoint("rt");
    time.advance(Duration::from_secs(60));
    assert!(refreshed(fake, client, 2).await);
}

#[tokio::test]
async fn a_scale_in_while_no_call_comes_is_accrued_from_the_refresh_not_the_next_call() {
    let fake = g5_endpoint(4).await;
    let (time, shared) = manual_clock();
    let client = refreshing_client(&fake, shared).await;
    call(&client, "rt").await; // t = 0: 4 instances, the accrual begins
    assert_eq!(fake.describe_calls(), 1);

    // t = 60 s: autoscaling has taken the endpoint down to one instance; no call
    // comes, the refresh loop sees it.
    fake.set_instance_count("rt", "AllTraffic", 1);
    time.advance(Duration::from_secs(60));
    let seen = refreshed(&fake, &client, 2).await;

    // t = 12 h: the next call.
    time.advance(Duration::from_secs(12 * 3600 - 60));
    let next = call(&client, "rt").await;
    // AWS bills 4 instances for 60 s, then 1 for 12 h − 60 s:
    // 4 × 60 + 1 × 43,140 = 43,380 instance-seconds = 12.05 instance-hours;
    // × $1.408 = $16.9664 (not 4 × 12 h × 1.408 = $67.584 at the old count).
    let accrual = next.accrual.clone().expect("an accrual");
    assert_eq!(accrual.accrued_usd, dec("16.9664"), "refresh seen: {seen}");
}

/// The refresh loop describes the endpoints a process has called a few at a
/// time: 40 quiet endpoints, all due at once, are not 40 control-plane requests
/// at once (a process that called thousands would send thousands each minute,
/// against limits the account's other tools share).
#[tokio::test]
async fn the_refresh_loop_describes_quiet_endpoints_a_few_at_a_time() {
    let fake = FakeSageMaker::start().await;
    let names: Vec<String> = (0..40).map(|i| format!("rt-{i}")).collect();
    for name in &names {
        fake.add_endpoint(
            name,
            vec![FakeVariant::instance("AllTraffic", "ml.g5.xlarge", 1)],
        );
    }
    let (time, shared) = manual_clock();
    let client = refreshing_client(&fake, shared).await;
    for name in &names {
        call(&client, name).await;
    }
    assert_eq!(fake.describe_calls(), 40);

    // Two minutes on, every profile is due; each request takes 200 ms.
    *fake.state.control_plane_delay.lock().unwrap() = Duration::from_millis(200);
    time.advance(Duration::from_secs(120));
    for _ in 0..1000 {
        if fake.describe_calls() >= 80 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(fake.describe_calls() >= 80, "{}", fake.describe_calls());
    let most = fake.control_plane_most_at_once();
    assert!(
        (2..=8).contains(&most),
        "{most} control-plane requests at once"
    );
}

/// An endpoint deleted and created again under its name hours later: its
/// instances cost nothing in between, so the accrual (and an amortised receipt)
/// does not charge the gap at the old count.
#[tokio::test]
async fn an_endpoint_deleted_and_created_again_accrues_nothing_for_the_hours_between() {
    let fake = g5_endpoint(1).await;
    let (time, shared) = manual_clock();
    let client = refreshing_client(&fake, shared).await;
    call(&client, "rt").await; // t = 0: 1 × ml.g5.xlarge, the accrual begins

    // t = 60 s: the endpoint is deleted; the refresh loop finds it gone.
    deleted_at_60_s(&fake, &time, &client).await;

    // t = 10 h: created again. The first call gets the failure of the last look
    // at once and has it looked at again; the next is priced on the new profile.
    time.advance(Duration::from_secs(10 * 3600 - 60));
    put_g5(&fake, 1);
    call(&client, "rt").await;
    assert!(refreshed(&fake, &client, 3).await);
    // t = 12 h: the next call; the new instance has stood since its profile was
    // found at 10 h.
    time.advance(Duration::from_secs(2 * 3600));
    let next = call(&client, "rt").await;
    // AWS billed the instance for the 60 s it stood before the deletion, nothing
    // until the new one, then 2 h of it: 1.408 × 60 / 3600 = 0.0234666… + 1.408
    // × 2 = 2.816 → 2.8394666… (not 1.408 × 12 h = 16.896 at the old count, nor
    // 0.0234666… with the new instance left out until a call came).
    let accrual = next.accrual.clone().expect("an accrual");
    assert_eq!(accrual.accrued_usd.round_dp(6), dec("2.839467"));
}

/// An endpoint deleted and created again, then `Creating` for 12 minutes: its
/// instance is not billed while it is created (neither the config's count nor
/// the fleet being created, which DescribeEndpoint gives as a pending
/// deployment), only from when it is in service.
#[tokio::test]
async fn an_endpoint_created_again_accrues_nothing_while_it_is_being_created() {
    // Not 2.9333333…: + 1.408 × 12 / 60 = 0.2816 for the config's count while
    // creating, + 1.408 × 4 / 60 = 0.0938666… for the fleet being created,
    // counted again from 10 h 8 min.
    created_again_at_10_h(CalledAt10H::Yes).await;
}

/// An endpoint deleted and created again while no call comes: the refresh
/// loop goes on looking at it after finding it deleted, so its instance
/// accrues from when it is found in service, not from its next call.
#[tokio::test]
async fn an_endpoint_created_again_while_idle_accrues_from_when_the_refresh_finds_it() {
    // Not 0.0234666…: the new instance left out until the call at 12 h.
    created_again_at_10_h(CalledAt10H::No).await;
}

/// Whether a call (refused: the endpoint is not in service) comes at 10 h.
#[derive(PartialEq)]
enum CalledAt10H {
    Yes,
    No,
}

/// 1 × ml.g5.xlarge called at 0 s, deleted at 60 s, created again at 10 h
/// (`Creating`, its instance up at 10 h 8 min, `InService` at 10 h 12 min),
/// called again at 12 h: each step is seen by the refresh loop (after a call at
/// 10 h, or with none), and the accrual at 12 h holds what AWS billed.
async fn created_again_at_10_h(called: CalledAt10H) {
    let fake = g5_endpoint(1).await;
    let (time, shared) = manual_clock();
    let client = refreshing_client(&fake, shared).await;
    call(&client, "rt").await; // t = 0: 1 × ml.g5.xlarge, the accrual begins

    // t = 60 s: the endpoint is deleted; the refresh loop finds it gone.
    deleted_at_60_s(&fake, &time, &client).await;

    // t = 10 h: created again (config InitialInstanceCount 1), `Creating`,
    // nothing up yet: looked at again (by the call, or by the refresh loop).
    fake.start_creating(
        "rt",
        vec![FakeVariant::instance("AllTraffic", "ml.g5.xlarge", 1)],
    );
    time.advance(Duration::from_secs(10 * 3600 - 60));
    if called == CalledAt10H::Yes {
        let refused = client
            .invoke_endpoint()
            .endpoint_name("rt")
            .body(Blob::new("{}"))
            .send()
            .await;
        assert!(refused.is_err());
    }
    assert!(refreshed(&fake, &client, 3).await);
    // t = 10 h 8 min: its instance is up, the endpoint still `Creating`.
    fake.creating_instances_up("rt", 1);
    time.advance(Duration::from_secs(8 * 60));
    assert!(refreshed(&fake, &client, 4).await);
    // t = 10 h 12 min: `InService`.
    fake.finish_creating("rt");
    time.advance(Duration::from_secs(4 * 60));
    assert!(refreshed(&fake, &client, 5).await);

    // t = 12 h: the next call.
    time.advance(Duration::from_secs(108 * 60));
    let next = call(&client, "rt").await;
    // AWS billed the instance for the 60 s before the deletion, nothing while
    // the endpoint was deleted or being created, then 10 h 12 min → 12 h = 1.8 h
    // in service: 1.408 × 60 / 3600 = 0.0234666… + 1.408 × 1.8 = 2.5344 →
    // 2.5578666….
    let accrual = next.accrual.clone().expect("an accrual");
    assert_eq!(accrual.accrued_usd.round_dp(6), dec("2.557867"));
}

/// An endpoint found deleted is looked at again by the refresh loop for a day,
/// not for the life of the process (a service calling an endpoint per test run,
/// each deleted for good, would describe them all at every interval); a call
/// still looks at it whenever it comes.
#[tokio::test]
async fn an_endpoint_deleted_for_a_day_is_no_longer_described_until_a_call_asks() {
    let fake = g5_endpoint(1).await;
    let (time, shared) = manual_clock();
    let client = refreshing_client(&fake, shared).await;
    call(&client, "rt").await;
    deleted_at_60_s(&fake, &time, &client).await;
    // t = 23 h: still watched, looked at again (still deleted).
    time.advance(Duration::from_secs(23 * 3600 - 60));
    assert!(refreshed(&fake, &client, 3).await);
    // t = 24 h 1 min: a day after it was found deleted; no call comes: several
    // of the refresh loop's ticks (100 ms each) pass without a look.
    time.advance(Duration::from_secs(3600 + 60));
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(fake.describe_calls(), 3);
    // A call asks for it (SageMaker refuses it: the endpoint is gone): it is
    // described again.
    let refused = client
        .invoke_endpoint()
        .endpoint_name("rt")
        .body(Blob::new("{}"))
        .send()
        .await;
    assert!(refused.is_err());
    assert!(refreshed(&fake, &client, 4).await);
}

/// A [`refreshing`] client of `fake` whose DescribeEndpoint the SDK does not
/// retry: a throttled one fails at once.
async fn refreshing_without_sdk_retries(fake: &FakeSageMaker, shared: SharedTimeSource) -> Client {
    let conf = fake.sdk_config().await;
    let sagemaker = aws_sdk_sagemaker::Client::from_conf(
        aws_sdk_sagemaker::config::Builder::from(&conf)
            .retry_config(aws_config::retry::RetryConfig::disabled())
            .build(),
    );
    refreshing(&conf, shared)
        .sagemaker_client(sagemaker)
        .build()
        .unwrap()
}

/// An endpoint deleted and created again, with a retry of its discovery
/// throttled in between: the refresh that finds it again still applies its
/// instances (the throttled retry does not make the deletion forgotten), so
/// they accrue from then, not from the next call.
#[tokio::test]
async fn an_endpoint_created_again_after_a_throttled_retry_accrues_from_when_it_is_found() {
    let fake = g5_endpoint(2).await;
    let (time, shared) = manual_clock();
    let client = refreshing_without_sdk_retries(&fake, shared).await;
    call(&client, "rt").await; // t = 0: 2 × ml.g5.xlarge, the accrual begins

    // t = 60 s: the endpoint is deleted; the refresh loop finds it gone.
    deleted_at_60_s(&fake, &time, &client).await;

    // t = 91 s: created again, but DescribeEndpoint is throttled: the call
    // gets the failure of the last look and has it retried, which fails.
    put_g5(&fake, 2);
    *fake.state.describe_error.lock().unwrap() = Some("ThrottlingException".into());
    time.advance(Duration::from_secs(31));
    call(&client, "rt").await;
    assert!(refreshed(&fake, &client, 3).await);

    // t = 122 s: no longer throttled; the call's retry finds the endpoint.
    *fake.state.describe_error.lock().unwrap() = None;
    time.advance(Duration::from_secs(31));
    call(&client, "rt").await;
    assert!(refreshed(&fake, &client, 4).await);

    // t = 2 h 122 s: the next call.
    time.advance(Duration::from_secs(2 * 3600));
    let next = call(&client, "rt").await;
    // AWS billed the 2 instances for the 60 s before the deletion, nothing
    // until they were found again at 122 s, then 2 h of them: 2 × 1.408 = 2.816
    // per hour; 2.816 × 60 / 3600 = 0.0469333… + 2.816 × 2 = 5.632 →
    // 5.6789333… (not 0.0469333…, the 2 h left at $0 until a call applied the
    // instances).
    let accrual = next.accrual.clone().expect("an accrual");
    assert_eq!(accrual.accrued_usd.round_dp(6), dec("5.678933"));
}

/// An endpoint whose first discovery was throttled: the retry a later call
/// starts in the background finds it, and its instances accrue from then, not
/// from the next call after (the failure cached before is no profile to compare
/// the one found with, but the profile is still news to the meter).
#[tokio::test]
async fn an_endpoint_first_found_by_a_retry_after_a_throttled_discovery_accrues_from_the_retry() {
    let fake = g5_endpoint(2).await;
    let (time, shared) = manual_clock();
    let client = refreshing_without_sdk_retries(&fake, shared).await;

    // t = 0: the first call's DescribeEndpoint is throttled; its receipt has
    // no profile to price it on.
    *fake.state.describe_error.lock().unwrap() = Some("ThrottlingException".into());
    call(&client, "rt").await;
    assert!(refreshed(&fake, &client, 1).await);

    // t = 31 s: no longer throttled; the call gets the cached failure at once
    // and starts a retry in the background, which finds the endpoint.
    *fake.state.describe_error.lock().unwrap() = None;
    time.advance(Duration::from_secs(31));
    call(&client, "rt").await;
    assert!(refreshed(&fake, &client, 2).await);

    // t = 2 h 31 s: the next call.
    time.advance(Duration::from_secs(2 * 3600));
    let next = call(&client, "rt").await;
    // AWS bills the 2 instances all along; the meter accrues them from when
    // their profile was found at 31 s: 2 × 1.408 = 2.816 per hour, × 2 h =
    // 5.632 (not about $0, the 2 h left out until this call applied them).
    let accrual = next.accrual.clone().expect("an accrual");
    assert_eq!(accrual.accrued_usd.round_dp(6), dec("5.632"));
}

#[tokio::test]
async fn a_variant_dropped_by_an_update_and_brought_back_accrues_nothing_for_the_hours_between() {
    let fake = g5_endpoint(1).await;
    let (time, shared) = manual_clock();
    let client = refreshing_client(&fake, shared).await;
    call(&client, "rt").await; // t = 0: AllTraffic, 1 × ml.g5.xlarge, the accrual begins

    // t = 60 s: the endpoint is updated to a config whose only variant is
    // Canary; the refresh loop sees AllTraffic gone.
    fake.add_endpoint(
        "rt",
        vec![FakeVariant::instance("Canary", "ml.g5.xlarge", 1)],
    );
    time.advance(Duration::from_secs(60));
    assert!(refreshed(&fake, &client, 2).await);

    // t = 10 h: rolled back to a config of AllTraffic; the refresh loop sees it.
    time.advance(Duration::from_secs(10 * 3600 - 60));
    put_g5(&fake, 1);
    assert!(refreshed(&fake, &client, 3).await);
    // t = 12 h: the next call; AllTraffic's instance has stood since its
    // profile was found at 10 h.
    time.advance(Duration::from_secs(2 * 3600));
    let next = call(&client, "rt").await;
    // AWS billed AllTraffic's instance for the 60 s it stood before the update,
    // nothing while the endpoint ran Canary alone, then 2 h of it: 1.408 × 60 /
    // 3600 = 0.0234666… + 1.408 × 2 = 2.816 → 2.8394666… (not 1.408 × 12 h =
    // 16.896 at the rate it had before the update).
    let accrual = next.accrual.clone().expect("an accrual");
    assert_eq!(accrual.accrued_usd.round_dp(6), dec("2.839467"));
}

#[tokio::test]
async fn an_async_invocation_is_one_call_in_the_totals_however_many_receipts() {
    let fake = g5_endpoint(1).await;
    let client = Client::builder(&fake.sdk_config().await)
        .price_source(Prices::us_east_1())
        .build()
        .unwrap();
    let submitted = crate::support::submit_async(&client, "rt", 1024).await;
    let landed =
        std::time::SystemTime::from(submitted.pending().submitted_at()) + Duration::from_secs(2);
    let settled = submitted
        .settle(sagemeter::client::AsyncCompletion::completed_at(landed).output_bytes(2048))
        .await;
    assert!(settled.is_async_settlement());
    // One submission, one settlement: one call (as metrics and reports count it),
    // both receipts' money.
    let totals = client.meter().totals();
    assert_eq!(totals.calls, 1);
    assert!(totals.client_usd >= settled.cost_usd && !settled.cost_usd.is_zero());
}

/// A process that only settles (an SQS consumer) first meets the endpoint at
/// the settlement, maybe hours after the submission, which may have waited in the
/// queue while the endpoint was scaled to zero: its accrual starts with the
/// processing it is told of, not at the submission at today's instance count.
#[tokio::test]
async fn a_settlement_accrues_the_instances_for_its_processing_not_since_the_submission() {
    let fake = g5_endpoint(1).await;
    let client = |clock: SharedTimeSource| {
        let fake = &fake;
        async move {
            Client::builder(&fake.sdk_config().await)
                .price_source(Prices::us_east_1())
                .time_source(clock)
                .build()
                .unwrap()
        }
    };
    let (_, submitter_clock) = manual_clock();
    let submitter = client(submitter_clock).await;
    let submitted = crate::support::submit_async(&submitter, "rt", 1024).await;
    let copy = serde_json::to_string(submitted.pending()).unwrap();
    // Three hours later, the settling process.
    let (time, settler_clock) = manual_clock();
    time.advance(Duration::from_secs(3 * 3600));
    let settler = client(settler_clock).await;
    let pending: sagemeter::client::PendingInference = serde_json::from_str(&copy).unwrap();
    let settled = settler
        .meter()
        .settle_async(
            pending,
            sagemeter::client::AsyncCompletion::processed_for(Duration::from_secs(600))
                .output_bytes(10),
        )
        .await
        .unwrap();
    // 1 ml.g5.xlarge at $1.408/h stood for the 10 min it processed:
    // 1.408 / 6 = 0.234666…, not 3 h × 1.408 = 4.224 since the submission.
    let accrual = settled.accrual.clone().expect("an accrual");
    assert_eq!(accrual.accrued_usd.round_dp(6), dec("0.234667"));
    // The receipt is dated at the submission; its accrual runs to the
    // settlement, three hours later, and says so.
    assert_eq!(
        accrual.accrued_to,
        Some(settled.at + chrono::Duration::hours(3))
    );
}

/// A failed call names no variant: one that targeted a variant the profile
/// lacks (added since it was described) is not priced as the profile's only
/// one. Here 60 s targeted at `B` (ml.g5.12xlarge, $7.09/h: 7.09 / 60 =
/// $0.118167 of it) while the profile has only `AllTraffic` (ml.g5.xlarge,
/// $1.408/h): not 1.408 / 60 = $0.023467 at `AllTraffic`'s rate, but unpriced,
/// saying which variant.
#[tokio::test]
async fn a_failed_call_targeting_a_variant_the_profile_lacks_is_unpriced_not_the_only_variants() {
    let fake = g5_endpoint(1).await;
    let (time, shared) = manual_clock();
    let client = Client::builder(&fake.sdk_config().await)
        .price_source(Prices::us_east_1())
        .time_source(shared)
        .build()
        .unwrap();
    // Described at t = 0: `AllTraffic` alone.
    client.meter().endpoint_profile("rt").await.unwrap();
    // An update adds `B`; the cached profile does not know it yet.
    fake.add_endpoint(
        "rt",
        vec![
            FakeVariant::instance("AllTraffic", "ml.g5.xlarge", 1),
            FakeVariant::instance("B", "ml.g5.12xlarge", 1),
        ],
    );
    fake.fail_invocations(424, "ModelError", "boom");
    fake.hold();
    let sent = client
        .invoke_endpoint()
        .endpoint_name("rt")
        .target_variant("B")
        .body(Blob::new("{}"))
        .send();
    let failed = tokio::spawn(sent);
    fake.wait_for_invocations(1).await;
    time.advance(Duration::from_secs(60));
    fake.release();
    let cost = match failed.await.unwrap().unwrap_err() {
        sagemeter::Error::Invoke { cost, .. } => *cost.expect("the model ran: a receipt"),
        other => panic!("not an invoke error: {other:?}"),
    };
    assert_eq!(cost.usage.variant, None, "not put on `AllTraffic`");
    let compute = compute(&cost);
    match &compute.price {
        LinePrice::Unpriced { reason } => assert!(
            reason.contains("the call targeted variant `B` (TargetVariant)")
                && !reason.contains("no production variants"),
            "{reason}"
        ),
        priced => panic!("billed as the only variant: {priced:?}"),
    }
    assert_eq!(compute.quantity, Decimal::ZERO);
    assert!(cost.accrual.is_none(), "not `AllTraffic`'s accrual");
}

#[tokio::test]
async fn a_variant_sagemaker_names_but_the_profile_lacks_is_unpriced_not_billed_as_another() {
    let fake = g5_endpoint(1).await;
    let (time, shared) = manual_clock();
    let client = Client::builder(&fake.sdk_config().await)
        .price_source(Prices::us_east_1())
        .time_source(shared)
        .build()
        .unwrap();
    // Described at t = 0.
    client.meter().endpoint_profile("rt").await.unwrap();
    let first = call(&client, "rt").await;
    assert_eq!(first.variant.as_deref(), Some("AllTraffic"));

    // Blue/green: traffic moves to `Blue` (ml.g5.12xlarge, $7.09/h) while the
    // cached profile still has only `AllTraffic` ($1.408/h).
    fake.add_endpoint(
        "rt",
        vec![FakeVariant::instance("Blue", "ml.g5.12xlarge", 1)],
    );
    let served_by_blue = call(&client, "rt").await;
    assert_eq!(served_by_blue.usage.variant.as_deref(), Some("Blue"));
    assert_eq!(served_by_blue.variant.as_deref(), Some("Blue"));
    match &compute(&served_by_blue).price {
        LinePrice::Unpriced { reason } => {
            assert!(
                reason.contains("profile is stale: SageMaker named `Blue`"),
                "{reason}"
            )
        }
        priced => panic!("billed as another variant: {priced:?}"),
    }
    assert!(
        served_by_blue.accrual.is_none(),
        "no other variant's accrual"
    );

    // The profile, 0 s old, is not described again at once: not once per call
    // while DescribeEndpoint may lag what served it.
    assert!(refreshed(&fake, &client, 0).await, "a refresh stuck");
    call(&client, "rt").await;
    assert!(refreshed(&fake, &client, 0).await, "a refresh stuck");
    assert_eq!(fake.describe_calls(), 1);
    // 10 s on, a call naming `Blue` has it described again, and the next call
    // is Blue's.
    time.advance(Duration::from_secs(10));
    call(&client, "rt").await;
    assert!(refreshed(&fake, &client, 2).await, "never described again");
    let next = call(&client, "rt").await;
    assert_eq!(next.variant.as_deref(), Some("Blue"));
    match &compute(&next).price {
        LinePrice::Priced { usd_per_unit, .. } => assert_eq!(*usd_per_unit, dec("7.09")),
        unpriced => panic!("{unpriced:?}"),
    }
}

/// The system clock, plus steps forward the test makes (as NTP would).
#[derive(Debug, Clone, Default)]
struct SteppingClock(std::sync::Arc<std::sync::atomic::AtomicU64>);

impl SteppingClock {
    fn step_forward(&self, by: Duration) {
        self.0
            .fetch_add(by.as_secs(), std::sync::atomic::Ordering::SeqCst);
    }
}

impl aws_smithy_async::time::TimeSource for SteppingClock {
    fn now(&self) -> std::time::SystemTime {
        std::time::SystemTime::now()
            + Duration::from_secs(self.0.load(std::sync::atomic::Ordering::SeqCst))
    }
}

#[tokio::test]
async fn a_wall_clock_stepping_forward_during_a_call_is_not_charged_to_it() {
    let fake = g5_endpoint(1).await;
    // The application's clock is the SDK config's (the system clock), which
    // steps an hour forward while SageMaker answers.
    let clock = SteppingClock::default();
    let sdk_config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new(REGION))
        .credentials_provider(aws_credential_types::Credentials::new(
            "test", "test", None, None, "fake",
        ))
        .endpoint_url(&fake.url)
        .time_source(clock.clone())
        .load()
        .await;
    let client = Client::builder(&sdk_config)
        .price_source(Prices::us_east_1())
        .build()
        .unwrap();
    call(&client, "rt").await; // discovered and priced: the next call is alone

    fake.hold();
    let running = tokio::spawn({
        let client = client.clone();
        async move { call(&client, "rt").await }
    });
    fake.wait_for_invocations(2).await;
    clock.step_forward(Duration::from_secs(3600));
    fake.release();
    let cost = running.await.unwrap();

    // Alone on one instance, the call is allocated the time it took (its
    // latency, on the monotonic clock): latency / 3600 instance-hours, not the
    // hour the wall clock stepped (1.0000… h × $1.408).
    let latency_hours = Decimal::from(u64::try_from(cost.usage.latency.as_micros()).unwrap())
        / Decimal::from(3_600_000_000u64);
    let line = compute(&cost);
    assert!(
        line.quantity <= latency_hours,
        "{} h for a call of {:?}",
        line.quantity,
        cost.usage.latency
    );
    // Neither does the accrual gain the step: the instance stood for the two
    // calls and the time between them (well under a minute here), not an hour
    // more: 60 s × $1.408 / 3600 = $0.023466….
    let accrual = cost.accrual.clone().expect("an accrual");
    assert!(accrual.accrued_usd < dec("0.023467"), "{accrual:?}");
}

/// Calls `rt` (one ml.g5.xlarge) at t = 0 and t = 1 h through a client priced
/// by `prices`, with a ledger; returns the second receipt and the ledger's text.
async fn an_hour_of_accrual_with_a_ledger(prices: impl PriceSource + 'static) -> (Cost, String) {
    let fake = g5_endpoint(1).await;
    let (time, shared) = manual_clock();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("calls.jsonl");
    let client = Client::builder(&fake.sdk_config().await)
        .price_source(prices)
        .time_source(shared)
        .sink(JsonlLedger::open(&path).unwrap())
        .build()
        .unwrap();
    call(&client, "rt").await;
    time.advance(Duration::from_secs(3600));
    let last = call(&client, "rt").await;
    client.meter().flush().await.unwrap();
    (last, std::fs::read_to_string(&path).unwrap())
}

/// The `priced_from` of the accrual on the ledger's last receipt, as the ledger's
/// lines say it (format 2: the receipt's origin ids, each defined on a line of
/// its own), and as the ledger reads back.
fn ledger_accrual_sources(ledger: &str, read_back: &[Cost]) -> Vec<serde_json::Value> {
    let lines: Vec<serde_json::Value> = ledger
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let receipt = lines.iter().rev().find(|l| l.get("c").is_some()).unwrap();
    let ids = receipt["ac"]["o"]
        .as_array()
        .expect("the accrual's sources");
    let from_lines: Vec<serde_json::Value> = ids
        .iter()
        .map(|id| {
            let mut def = lines
                .iter()
                .find(|l| l.get("origin") == Some(id))
                .expect("an origin definition before the receipt")
                .clone();
            let def = def.as_object_mut().unwrap();
            def.remove("v");
            def.remove("origin");
            serde_json::Value::Object(def.clone())
        })
        .collect();
    let read = read_back.last().unwrap().accrual.as_ref().unwrap();
    assert_eq!(
        serde_json::to_value(&read.priced_from).unwrap(),
        serde_json::Value::Array(from_lines.clone()),
        "the ledger reads back what its lines say"
    );
    from_lines
}

#[tokio::test]
async fn an_accrual_priced_from_the_bundled_snapshot_says_so_in_the_ledger() {
    // No live source: the bundled snapshot prices ml.g5.xlarge in us-east-1 at
    // $1.408 per instance-hour (its published on-demand price as of 2026-05-20).
    let (last, ledger) = an_hour_of_accrual_with_a_ledger(Snapshot::bundled()).await;
    let accrual = last.accrual.clone().unwrap();
    // 1 instance × 1 h × $1.408 = $1.408.
    assert_eq!(accrual.accrued_usd, dec("1.408"));
    let read = read_ledger(&ledger);
    let sources = ledger_accrual_sources(&ledger, &read);
    assert_eq!(sources.len(), 1, "{sources:?}");
    assert_eq!(sources[0]["charge"], "capacity");
    assert_eq!(sources[0]["price_source"], "snapshot");
    let note = sources[0]["note"].as_str().expect("the snapshot's note");
    assert!(note.contains("bundled price snapshot"), "{note}");
    assert_eq!(accrual.fallbacks().count(), 1);
}

#[tokio::test]
async fn an_accrual_priced_live_says_live_in_the_ledger() {
    let (last, ledger) = an_hour_of_accrual_with_a_ledger(Prices::us_east_1()).await;
    let accrual = last.accrual.clone().unwrap();
    assert_eq!(accrual.accrued_usd, dec("1.408"));
    let read = read_ledger(&ledger);
    let sources = ledger_accrual_sources(&ledger, &read);
    assert_eq!(
        sources,
        [serde_json::json!({"charge": "capacity", "price_source": "live"})]
    );
    assert_eq!(accrual.fallbacks().count(), 0);
}

fn read_ledger(text: &str) -> Vec<Cost> {
    sagemeter::ledger::LedgerReader::new(text.as_bytes(), "calls.jsonl")
        .collect::<Result<Vec<_>, _>>()
        .unwrap()
}

/// A client of the fake's `rt` with the fixed `profile` (no discovery), priced
/// from [`Prices`], on the manual clock `shared`.
async fn fixed(
    fake: &FakeSageMaker,
    profile: sagemeter::endpoint::EndpointProfile,
    shared: SharedTimeSource,
) -> Client {
    put_g5(fake, 2);
    Client::builder(&fake.sdk_config().await)
        .without_discovery()
        .endpoint_profile(profile)
        .price_source(Prices::us_east_1())
        .time_source(shared)
        .build()
        .unwrap()
}

#[tokio::test]
async fn a_shadow_variants_instances_are_accrued_with_its_production_variant_not_priced_on_calls() {
    use sagemeter::endpoint::{EndpointProfile, VariantProfile};
    let fake = FakeSageMaker::start().await;
    let (time, shared) = manual_clock();
    // Production: 2 × ml.g5.xlarge; shadow (copies of production traffic): 1 ×
    // ml.g5.12xlarge. AWS bills all three instances by the hour.
    let profile = EndpointProfile::new(
        "rt",
        vec![VariantProfile::instance("AllTraffic", "ml.g5.xlarge", 2)],
    )
    .with_shadow_variant(VariantProfile::instance("Shadow", "ml.g5.12xlarge", 1));
    let client = fixed(&fake, profile, shared).await;
    let first = call(&client, "rt").await; // t = 0: the accrual begins
    // The caller's call is served by the production variant, at its rate.
    assert_eq!(first.variant.as_deref(), Some("AllTraffic"));
    let LinePrice::Priced { usd_per_unit, .. } = &compute(&first).price else {
        panic!("compute is priced: {:?}", compute(&first));
    };
    assert_eq!(*usd_per_unit, dec("1.408"));

    time.advance(Duration::from_secs(3600));
    let next = call(&client, "rt").await;
    // One hour: 2 × $1.408 (production) + 1 × $7.09 (shadow) = $9.906,
    // not 2 × $1.408 = $2.816 with the shadow's hour left out.
    let accrual = next.accrual.clone().expect("an accrual");
    assert_eq!(accrual.accrued_usd, dec("9.906"));
    // Each part as AWS bills it, under its own instance type: the production
    // variant's $2.816/h first, then the shadow's $7.09/h.
    let parts: Vec<(String, rust_decimal::Decimal)> = accrual
        .standing_parts
        .iter()
        .map(|p| match &p.billing {
            sagemeter::endpoint::VariantBilling::Instance { instance_type, .. } => {
                (instance_type.clone(), p.usd_per_hour)
            }
            other => panic!("an instance variant: {other:?}"),
        })
        .collect();
    assert_eq!(
        parts,
        [
            ("ml.g5.xlarge".to_owned(), dec("2.816")),
            ("ml.g5.12xlarge".to_owned(), dec("7.09"))
        ]
    );
    // The first receipt's accrual is split the same way.
    assert_eq!(first.accrual.as_ref().unwrap().standing_parts.len(), 2);
}

/// A shadow whose instance type no source prices is left out of the accrual,
/// and every receipt of its production variant says so: never a silent $0.
#[tokio::test]
async fn a_shadow_whose_rate_is_not_known_is_named_on_every_receipt_as_not_accrued() {
    use sagemeter::endpoint::{EndpointProfile, VariantProfile};
    let fake = FakeSageMaker::start().await;
    let (time, shared) = manual_clock();
    // Production: 2 × ml.g5.xlarge ($1.408/h each); shadow: 1 × a type no
    // source prices.
    let profile = EndpointProfile::new(
        "rt",
        vec![VariantProfile::instance("AllTraffic", "ml.g5.xlarge", 2)],
    )
    .with_shadow_variant(VariantProfile::instance(
        "Shadow",
        "ml.unpriced.12xlarge",
        1,
    ));
    let client = fixed(&fake, profile, shared).await;
    call(&client, "rt").await; // t = 0: the accrual begins

    time.advance(Duration::from_secs(3600));
    let next = call(&client, "rt").await;
    // One hour of production: 2 × $1.408 = $2.816. AWS also bills the
    // shadow's instance, whose rate is not known: the receipt says the accrual
    // leaves it out.
    let accrual = next.accrual.clone().expect("an accrual");
    assert_eq!(accrual.accrued_usd, dec("2.816"));
    assert!(
        next.notes
            .iter()
            .any(|n| n.contains("shadow/pending fleet `Shadow` is not accrued")),
        "{:?}",
        next.notes
    );
}

#[tokio::test]
async fn a_new_instance_fleet_whose_rate_is_not_known_beside_a_serverless_variant_is_named_too() {
    use sagemeter::endpoint::{EndpointProfile, VariantProfile};
    let fake = FakeSageMaker::start().await;
    let (_time, shared) = manual_clock();
    // A serverless endpoint being updated to instances: the serverless variant
    // (no provisioned concurrency) has nothing standing, and the deployment's
    // new fleet, 1 × a type no source prices, is billed by the hour from when it
    // stands. Its hours are not in the accrual; each receipt says so.
    let profile = EndpointProfile::new("rt", vec![VariantProfile::serverless("AllTraffic", 2048)])
        .with_pending_variant(VariantProfile::instance(
            "AllTraffic",
            "ml.unpriced.12xlarge",
            1,
        ));
    let client = fixed(&fake, profile, shared).await;
    for _ in 0..2 {
        let cost = call(&client, "rt").await;
        assert!(
            cost.notes
                .iter()
                .any(|n| n.contains("shadow/pending fleet `AllTraffic` is not accrued")),
            "{:?}",
            cost.notes
        );
    }
}

/// `rt`'s fixed profile: production `AllTraffic` on 2 × an instance type no
/// source prices; shadow on 1 × ml.g5.xlarge ($1.408/h).
fn unpriced_production_beside_a_g5_shadow() -> sagemeter::endpoint::EndpointProfile {
    use sagemeter::endpoint::{EndpointProfile, VariantProfile};
    EndpointProfile::new(
        "rt",
        vec![VariantProfile::instance(
            "AllTraffic",
            "ml.unpriced.xlarge",
            2,
        )],
    )
    .with_shadow_variant(VariantProfile::instance("Shadow", "ml.g5.xlarge", 1))
}

/// A shadow beside a production variant whose rate was never known (no
/// source prices its instance type, from the first look-up on): the shadow's
/// instance-hours still accrue, at its own known rate, and the production
/// variant's are unpriced, saying why, on every receipt (never $0 unsaid).
#[tokio::test]
async fn a_shadow_beside_a_variant_whose_rate_was_never_known_still_accrues() {
    let fake = FakeSageMaker::start().await;
    let (time, shared) = manual_clock();
    // Production: 2 × an unpriced type; shadow: 1 × ml.g5.xlarge ($1.408/h).
    // AWS bills all three instances by the hour.
    let profile = unpriced_production_beside_a_g5_shadow();
    let client = fixed(&fake, profile, shared).await;
    let first = call(&client, "rt").await; // t = 0: the accrual begins
    time.advance(Duration::from_secs(3600));
    let next = call(&client, "rt").await;
    for receipt in [&first, &next] {
        // The production variant's instance time: unpriced, saying why.
        let LinePrice::Unpriced { reason } = &compute(receipt).price else {
            panic!("compute is unpriced: {:?}", compute(receipt));
        };
        assert!(reason.contains("ml.unpriced.xlarge"), "{reason}");
        assert!(!receipt.is_fully_priced());
        assert!(
            receipt
                .notes
                .iter()
                .any(|n| n.contains("billed alongside") && n.contains("not priced")),
            "{:?}",
            receipt.notes
        );
    }
    // One hour of the shadow: 1 × $1.408 × 1 h = $1.408 (the production
    // variant's two instances are in no figure: their rate is not known).
    let accrual = next.accrual.clone().expect("the shadow accrues");
    assert_eq!(accrual.accrued_usd, dec("1.408"));
    // Its one part is the shadow's, under its own instance type: not the
    // production variant's type at the shadow's rate.
    let parts: Vec<_> = accrual
        .standing_parts
        .iter()
        .map(|p| (p.billing.clone(), p.usd_per_hour))
        .collect();
    assert_eq!(
        parts,
        [(
            sagemeter::endpoint::VariantBilling::Instance {
                instance_type: "ml.g5.xlarge".into(),
                instance_count: 1
            },
            dec("1.408")
        )]
    );
}

/// Amortised, the same endpoint's second call carries the shadow's hour,
/// priced, and the production variant's instance time (2 instances × 1 h =
/// 2 instance-hours) unpriced, saying why.
#[tokio::test]
async fn amortized_a_shadow_beside_a_variant_whose_rate_was_never_known_is_charged() {
    use sagemeter::billing::Allocation;
    let fake = FakeSageMaker::start().await;
    let (time, shared) = manual_clock();
    put_g5(&fake, 2);
    let profile = unpriced_production_beside_a_g5_shadow();
    let client = Client::builder(&fake.sdk_config().await)
        .without_discovery()
        .endpoint_profile(profile)
        .price_source(Prices::us_east_1())
        .allocation(Allocation::Amortized)
        .time_source(shared)
        .build()
        .unwrap();
    call(&client, "rt").await; // t = 0
    time.advance(Duration::from_secs(3600));
    let next = call(&client, "rt").await;
    let lines = compute_lines(&next);
    assert_eq!(lines.len(), 2, "{lines:?}");
    // The shadow's hour: 1 instance × 1 h = 1 instance-hour × $1.408 = $1.408.
    let LinePrice::Priced {
        usd_per_unit,
        cost_usd,
        ..
    } = &lines[0].price
    else {
        panic!("the shadow's hour is priced: {lines:?}");
    };
    assert_eq!(lines[0].quantity, dec("1"));
    assert_eq!(*usd_per_unit, dec("1.408"));
    assert_eq!(*cost_usd, dec("1.408"));
    // The production variant's: unpriced, naming what could not be priced,
    // for the instance-hours AWS bills it: 2 instances × 1 h = 2 (not 0).
    let LinePrice::Unpriced { reason } = &lines[1].price else {
        panic!("the production variant's time is unpriced: {lines:?}");
    };
    assert!(reason.contains("ml.unpriced.xlarge"), "{reason}");
    assert_eq!(lines[1].quantity, dec("2"));
    assert!(!next.is_fully_priced());
}

#[tokio::test]
async fn a_blue_green_deployments_new_fleet_is_accrued_while_it_bakes() {
    use sagemeter::endpoint::{EndpointProfile, VariantProfile};
    let fake = FakeSageMaker::start().await;
    let (time, shared) = manual_clock();
    // Blue: 2 × ml.g5.xlarge serving; green (PendingDeploymentSummary, same
    // variant name): 1 × ml.g5.12xlarge up so far. Both fleets are billed.
    let profile = EndpointProfile::new(
        "rt",
        vec![VariantProfile::instance("AllTraffic", "ml.g5.xlarge", 2)],
    )
    .with_pending_variant(VariantProfile::instance("AllTraffic", "ml.g5.12xlarge", 1));
    let client = fixed(&fake, profile, shared).await;
    call(&client, "rt").await;
    time.advance(Duration::from_secs(30 * 60));
    let next = call(&client, "rt").await;
    // Half an hour: (2 × $1.408 + 1 × $7.09) × 0.5 h = $9.906 / 2 = $4.953.
    let accrual = next.accrual.clone().expect("an accrual");
    assert_eq!(accrual.accrued_usd, dec("4.953"));
}

#[tokio::test]
async fn an_amortized_receipt_across_a_scale_out_charges_each_count_for_its_time() {
    use sagemeter::billing::Allocation;
    use sagemeter::endpoint::VariantBilling;
    let fake = g5_endpoint(2).await;
    let (time, shared) = manual_clock();
    let client = Client::builder(&fake.sdk_config().await)
        .price_source(Prices::us_east_1())
        .allocation(Allocation::Amortized)
        .discovery_refresh(Duration::from_millis(100))
        .time_source(shared)
        .build()
        .unwrap();
    call(&client, "rt").await; // A, t = 0: 2 instances

    // t = 1800 s: autoscaling has added two instances; the refresh loop (no call
    // comes) applies the new count now.
    time.advance(Duration::from_secs(1800));
    fake.set_instance_count("rt", "AllTraffic", 4);
    let mut four = false;
    for _ in 0..500 {
        let profile = client.meter().endpoint_profile("rt").await.unwrap();
        four = matches!(
            profile.variants[0].billing,
            VariantBilling::Instance {
                instance_count: 4,
                ..
            }
        );
        if four && client.meter().background_tasks() == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(four, "the refresh never saw 4 instances");

    // t = 3600 s: B carries what the instances cost since A:
    // 2 × 0.5 h + 4 × 0.5 h = 3 instance-hours × $1.408 = $4.224
    // (not 4 × 1 h × $1.408 = $5.632 at the count B's profile says).
    time.advance(Duration::from_secs(1800));
    let b = call(&client, "rt").await;
    let compute = compute_lines(&b);
    let quantity: Decimal = compute.iter().map(|l| l.quantity).sum();
    let cost_usd: Decimal = compute.iter().filter_map(|l| l.cost_usd()).sum();
    assert_eq!(quantity, dec("3"), "{compute:?}");
    assert_eq!(cost_usd, dec("4.224"), "{compute:?}");
    // The accrual agrees: all of it since A ended was called for.
    let accrual = b.accrual.clone().expect("an accrual");
    assert_eq!(accrual.accrued_usd, dec("4.224"));
}

/// ml.g5.xlarge at a rate a test changes as it goes; data processing at $0.016.
#[derive(Debug)]
struct ChangingPrice(std::sync::Mutex<(Decimal, Provenance)>);

impl ChangingPrice {
    fn rate(&self, key: &PriceKey) -> Result<Rate, PriceError> {
        match key {
            PriceKey::DataIn { .. } | PriceKey::DataOut { .. } => Ok(Rate::new(
                key.clone(),
                dec("0.016"),
                Provenance::new(PriceOrigin::Live),
            )),
            _ if *key == PriceKey::hosting(REGION, "ml.g5.xlarge") => {
                let (usd, provenance) = self.0.lock().unwrap().clone();
                Ok(Rate::new(key.clone(), usd, provenance))
            }
            _ => Err(PriceError::NotFound { key: key.clone() }),
        }
    }
}

impl PriceSource for ChangingPrice {
    fn price<'a>(&'a self, key: &'a PriceKey) -> BoxFuture<'a, Result<Rate, PriceError>> {
        Box::pin(async move { self.rate(key) })
    }
    fn price_now(&self, key: &PriceKey) -> Option<Result<Rate, PriceError>> {
        Some(self.rate(key))
    }
}

#[tokio::test]
async fn an_amortized_receipt_across_a_price_change_has_a_line_per_rate_each_with_its_source() {
    use sagemeter::billing::Allocation;
    use sagemeter::endpoint::{EndpointProfile, VariantProfile};
    let fake = g5_endpoint(2).await;
    let (time, shared) = manual_clock();
    let down = "primary price source failed (HTTP 500); bundled price snapshot";
    let prices = Arc::new(ChangingPrice(std::sync::Mutex::new((
        dec("1.408"),
        Provenance::new(PriceOrigin::Snapshot).with_note(down),
    ))));
    let client = Client::builder(&fake.sdk_config().await)
        .without_discovery()
        .endpoint_profile(EndpointProfile::new(
            "rt",
            vec![VariantProfile::instance("AllTraffic", "ml.g5.xlarge", 2)],
        ))
        .price_source(prices.clone())
        .allocation(Allocation::Amortized)
        .time_source(shared)
        .build()
        .unwrap();
    call(&client, "rt").await; // A, t = 0: $1.408 from the bundled snapshot

    // t = 1800 s: the Price List answers again, $1.212 (a price cut); B starts
    // then (and applies the new rate) and answers at t = 3600 s.
    *prices.0.lock().unwrap() = (dec("1.212"), Provenance::new(PriceOrigin::Live));
    time.advance(Duration::from_secs(1800));
    fake.hold();
    let b = tokio::spawn({
        let client = client.clone();
        async move { call(&client, "rt").await }
    });
    fake.wait_for_invocations(2).await;
    time.advance(Duration::from_secs(1800));
    fake.release();
    let b = b.await.unwrap();

    // B carries 2 instances × 0.5 h at each rate, each line with its own source:
    // 1 instance-hour × $1.408 = $1.408 (snapshot), 1 × $1.212 = $1.212 (live):
    // $2.62 (not 2 × 1 h × $1.212 = $2.424, all of it claimed live).
    let compute: Vec<_> = b
        .lines
        .iter()
        .filter(|l| l.item == LineItem::Compute)
        .map(|l| match &l.price {
            LinePrice::Priced {
                usd_per_unit,
                cost_usd,
                provenance,
            } => (l.quantity, *usd_per_unit, *cost_usd, provenance.source),
            other => panic!("unpriced: {other:?}"),
        })
        .collect();
    assert_eq!(
        compute,
        [
            (dec("1"), dec("1.408"), dec("1.408"), PriceOrigin::Snapshot),
            (dec("1"), dec("1.212"), dec("1.212"), PriceOrigin::Live),
        ]
    );
    assert_eq!(
        b.accrual.clone().expect("an accrual").accrued_usd,
        dec("2.62")
    );
}

#[tokio::test]
async fn an_amortized_gap_is_carried_past_a_call_whose_compute_the_interceptor_cannot_see() {
    use crate::support::receipts::Receipts;
    use sagemeter::billing::Allocation;
    use sagemeter::endpoint::{EndpointProfile, VariantProfile};
    use sagemeter::usage::Operation;
    let fake = g5_endpoint(2).await;
    let (time, shared) = manual_clock();
    let receipts = Receipts::default();
    let config = fake.sdk_config().await;
    let meter = Client::builder(&config)
        .without_discovery()
        .endpoint_profile(EndpointProfile::new(
            "rt",
            vec![VariantProfile::instance("AllTraffic", "ml.g5.xlarge", 2)],
        ))
        .price_source(Prices::us_east_1())
        .allocation(Allocation::Amortized)
        .time_source(shared)
        .sink(receipts.clone())
        .build_meter()
        .unwrap();
    let sdk = intercepted(&config, &meter);
    let made = |n: usize| {
        let (meter, receipts) = (meter.clone(), receipts.clone());
        async move {
            for _ in 0..500 {
                if receipts.all().len() >= n && meter.background_tasks() == 0 {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            assert_eq!(receipts.all().len(), n, "receipts made");
        }
    };
    let invoke = || {
        sdk.invoke_endpoint()
            .endpoint_name("rt")
            .body(Blob::new("{}"))
            .send()
    };
    invoke().await.unwrap(); // A, t = 0
    made(1).await;
    // t = 10 s: an async submission the interceptor sees, whose compute it
    // cannot (its receipt's compute is unpriced).
    time.advance(Duration::from_secs(10));
    sdk.invoke_endpoint_async()
        .endpoint_name("rt")
        .input_location("s3://fake-bucket/input/1.json")
        .send()
        .await
        .unwrap();
    made(2).await;
    // t = 30 s: B carries the whole 30 s since A, not the 20 s since the
    // submission: 2 instances × 30 s × $1.408/h = 2 × 1.408 × 30 / 3600
    // = 0.0234666… → 0.023466666667 (12 places).
    time.advance(Duration::from_secs(20));
    invoke().await.unwrap();
    made(3).await;
    let all = receipts.all();
    assert_eq!(all[1].usage.operation, Operation::InvokeEndpointAsync);
    assert_eq!(compute(&all[1]).cost_usd(), None, "{:?}", compute(&all[1]));
    let b = &all[2];
    assert_eq!(b.usage.operation, Operation::InvokeEndpoint);
    assert_eq!(compute(b).cost_usd(), Some(dec("0.023466666667")));
}

/// Blue: 2 × ml.g5.xlarge with 30 GB volumes; a blue/green deployment baking,
/// green: 2 × ml.g5.12xlarge up, with 30 GB volumes in its own endpoint config.
async fn blue_green(fake: &FakeSageMaker, shared: SharedTimeSource) -> Client {
    fake.add_endpoint(
        "rt",
        vec![FakeVariant::instance("AllTraffic", "ml.g5.xlarge", 2).with_volume(30)],
    );
    fake.start_deployment(
        "rt",
        vec![FakeVariant::instance("AllTraffic", "ml.g5.12xlarge", 2).with_volume(30)],
    );
    Client::builder(&fake.sdk_config().await)
        .price_source(Snapshot::bundled())
        .time_source(shared)
        .build()
        .unwrap()
}

#[tokio::test]
async fn a_blue_green_deployments_new_fleet_accrues_its_ml_storage_volumes_too() {
    let fake = FakeSageMaker::start().await;
    let (time, shared) = manual_clock();
    let client = blue_green(&fake, shared).await;
    call(&client, "rt").await; // t = 0: the accrual begins
    time.advance(Duration::from_secs(3600));
    let next = call(&client, "rt").await;
    let accrual = next.accrual.clone().expect("an accrual");
    // The bundled snapshot's us-east-1 rates: ml.g5.xlarge $1.408/h,
    // ml.g5.12xlarge $7.09/h, hosting ML storage (gp2) $0.14 per GB-month.
    // Instances, one hour: 2 × $1.408 + 2 × $7.09 = $16.996.
    assert_eq!(accrual.accrued_usd, dec("16.996"));
    // Storage: AWS bills the GB-month prorated by the hour; the crate prorates
    // it by the second over the calendar month it falls in (the clock starts on
    // 2027-01-15: January, 31 days = 744 h). Every instance's 30 GB, blue's and
    // green's: (2 + 2) × 30 GB × $0.14 / 744 h × 1 h = $16.8 / 744
    // = $0.0225806451612903… → $0.022580645161 (not blue's alone,
    // 2 × 30 × 0.14 / 744 = $0.011290322581).
    assert_eq!(accrual.storage_usd, Some(dec("0.022580645161")));
    // The call is priced at blue's instances, and says green may have served it.
    let LinePrice::Priced { usd_per_unit, .. } = &compute(&next).price else {
        panic!("compute is priced: {:?}", compute(&next));
    };
    assert_eq!(*usd_per_unit, dec("1.408"));
    assert!(
        next.notes.iter().any(|n| n
            == "a blue/green deployment is under way; the call may have been served by the \
                new fleet (ml.g5.12xlarge × 2), priced at ml.g5.xlarge"),
        "{:?}",
        next.notes
    );
}

#[tokio::test]
async fn a_deployment_whose_config_cannot_be_described_accrues_its_instances_and_says_its_storage_is_not()
 {
    let fake = FakeSageMaker::start().await;
    *fake.state.deployment_config_error.lock().unwrap() = Some("AccessDeniedException".into());
    let (time, shared) = manual_clock();
    let client = blue_green(&fake, shared).await;
    call(&client, "rt").await;
    time.advance(Duration::from_secs(3600));
    let next = call(&client, "rt").await;
    let accrual = next.accrual.clone().expect("an accrual");
    // Both fleets' instances, as above: 2 × $1.408 + 2 × $7.09 = $16.996.
    assert_eq!(accrual.accrued_usd, dec("16.996"));
    // Blue's storage only, 2 × 30 GB × $0.14 / 744 h = $0.011290322580645… →
    // $0.011290322581; green's is unknown, and the receipt says so.
    assert_eq!(accrual.storage_usd, Some(dec("0.011290322581")));
    assert!(
        next.notes
            .iter()
            .any(|n| n.contains("the new fleet's ML storage is not accrued")
                && n.contains("`rt-green-config` could not be described")),
        "{:?}",
        next.notes
    );
}

#[tokio::test]
async fn a_deployments_switch_over_is_priced_within_seconds_not_at_the_next_minutes_refresh() {
    let fake = FakeSageMaker::start().await;
    let (time, shared) = manual_clock();
    let client = blue_green(&fake, shared).await;
    call(&client, "rt").await;
    assert_eq!(fake.describe_calls(), 1);

    // Traffic has shifted and blue is retired; 10 s on, a call comes. SageMaker
    // names the same variant, so the call cannot tell: it is priced at blue's
    // ml.g5.xlarge, and the profile (with a deployment under way, refreshed
    // every 10 s rather than every 60 s) is described again.
    fake.finish_deployment("rt");
    time.advance(Duration::from_secs(10));
    let during = call(&client, "rt").await;
    let LinePrice::Priced { usd_per_unit, .. } = &compute(&during).price else {
        panic!("compute is priced: {:?}", compute(&during));
    };
    assert_eq!(*usd_per_unit, dec("1.408"));
    assert!(refreshed(&fake, &client, 2).await, "not described again");

    // The next call is green's: ml.g5.12xlarge, $7.09/h, with no note.
    let after = call(&client, "rt").await;
    let LinePrice::Priced { usd_per_unit, .. } = &compute(&after).price else {
        panic!("compute is priced: {:?}", compute(&after));
    };
    assert_eq!(*usd_per_unit, dec("7.09"));
    assert!(
        !after.notes.iter().any(|n| n.contains("blue/green")),
        "{:?}",
        after.notes
    );
}

/// The test's own SDK interceptor: wakes the test once the SDK has SageMaker's
/// answer to a call (before the call's future returns it).
#[derive(Debug, Clone)]
struct AnswerSeen(Arc<tokio::sync::Notify>);

impl aws_smithy_runtime_api::client::interceptors::Intercept for AnswerSeen {
    fn name(&self) -> &'static str {
        "AnswerSeen"
    }
    fn read_after_execution(
        &self,
        _: &aws_smithy_runtime_api::client::interceptors::context::FinalizerInterceptorContextRef<
            '_,
        >,
        _: &aws_smithy_runtime_api::client::runtime_components::RuntimeComponents,
        _: &mut aws_smithy_types::config_bag::ConfigBag,
    ) -> Result<(), aws_smithy_runtime_api::box_error::BoxError> {
        self.0.notify_one();
        Ok(())
    }
}

/// [`Prices::us_east_1`], each answered only once the test opens the gate: the
/// first calls to an endpoint wait for their rates.
#[derive(Debug)]
struct Gated {
    prices: Prices,
    open: tokio::sync::watch::Receiver<bool>,
}

impl PriceSource for Gated {
    fn price<'a>(&'a self, key: &'a PriceKey) -> BoxFuture<'a, Result<Rate, PriceError>> {
        Box::pin(async move {
            let mut open = self.open.clone();
            let _ = open.wait_for(|open| *open).await;
            self.prices.rate(key)
        })
    }
}

#[tokio::test]
async fn a_call_answered_while_its_rates_are_found_leaves_the_sharing_clock_at_its_answer() {
    let fake = g5_endpoint(1).await;
    let (time, shared) = manual_clock();
    let (gate, open) = tokio::sync::watch::channel(false);
    let answers = Arc::new(tokio::sync::Notify::new());
    let sdk_config = fake.sdk_config().await;
    let runtime = aws_sdk_sagemakerruntime::Client::from_conf(
        aws_sdk_sagemakerruntime::config::Builder::from(&sdk_config)
            .interceptor(AnswerSeen(answers.clone()))
            .build(),
    );
    let client = Client::builder(&sdk_config)
        .runtime_client(runtime)
        .price_source(Gated {
            prices: Prices::us_east_1(),
            open,
        })
        .time_source(shared)
        .build()
        .unwrap();
    let spawn_call = |client: &Client| {
        let client = client.clone();
        tokio::spawn(async move { call(&client, "rt").await })
    };

    // t = 0: A is sent and answered at once; its receipt waits for the rates.
    let a = spawn_call(&client);
    answers.notified().await;
    // t = 10 s: B is sent; SageMaker holds it.
    time.advance(Duration::from_secs(10));
    fake.hold();
    let b = spawn_call(&client);
    fake.wait_for_invocations(2).await;
    // The rates arrive: A's receipt is made, while B is still in flight.
    gate.send_replace(true);
    let a = a.await.unwrap();
    // t = 20 s: B is answered.
    time.advance(Duration::from_secs(10));
    fake.release();
    let b = b.await.unwrap();

    // AWS bills the one ml.g5.xlarge by the hour; it served A for no time (sent
    // and answered at t = 0) and B alone from 10 s to 20 s:
    // A: 0 instance-hours, $0.
    // B: 10 s = 10 / 3600 h × $1.408 = $0.0039111… (rounded down to 10⁻¹² USD).
    assert_eq!(compute(&a).quantity, Decimal::ZERO, "{a:#?}");
    assert_eq!(compute(&a).cost_usd(), Some(Decimal::ZERO));
    assert_eq!(
        compute(&b).cost_usd(),
        Some(dec("0.003911111111")),
        "{b:#?}"
    );
    // Together the receipts stay within what the instance accrued meanwhile.
    let accrual = b.accrual.clone().expect("an accrual");
    assert!(
        accrual.allocated_usd <= accrual.accrued_usd,
        "receipts {} > accrued {}",
        accrual.allocated_usd,
        accrual.accrued_usd
    );
}

/// A client of `fake` in `region` priced from the bundled snapshot on a manual
/// clock, and its call of `endpoint` an hour after a first one began the
/// accrual: the client and that call's receipt.
async fn an_hour_apart_on_the_snapshot(
    fake: &FakeSageMaker,
    region: &'static str,
    endpoint: &str,
) -> (Client, Cost) {
    let (time, shared) = manual_clock();
    let client = Client::builder(&fake.sdk_config().await)
        .region(region)
        .price_source(Snapshot::bundled())
        .time_source(shared)
        .build()
        .unwrap();
    call(&client, endpoint).await; // the accrual begins
    time.advance(Duration::from_secs(3600));
    let next = call(&client, endpoint).await;
    (client, next)
}

/// An endpoint config that states no `VolumeSizeInGB`: SageMaker attaches a volume
/// of the instance type's default size (none on types with NVMe instance storage),
/// which no size is assumed for. The accrual counts the instances alone, and one
/// INFO line per endpoint and variant says the storage is left out (not a note on
/// every receipt, nor a WARN: often nothing is missing).
#[tokio::test]
async fn a_variant_without_a_stated_volume_size_accrues_its_instances_and_says_so_once() {
    let logs = crate::support::logs::capture();
    let fake = FakeSageMaker::start().await;
    fake.add_endpoint(
        "no-volume",
        vec![FakeVariant::instance("AllTraffic", "ml.m5.xlarge", 2)],
    );
    let (_client, next) = an_hour_apart_on_the_snapshot(&fake, "us-east-1", "no-volume").await;
    let accrual = next.accrual.clone().expect("an accrual");
    // The snapshot's us-east-1 ml.m5.xlarge, $0.23/h: 2 instances × 1 h = $0.46.
    assert_eq!(accrual.accrued_usd, dec("0.46"));
    assert_eq!(accrual.storage_usd, None);
    let said: Vec<_> = logs
        .at_level("INFO")
        .into_iter()
        .filter(|l| {
            l["fields"]["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("the endpoint config states no VolumeSizeInGB"))
        })
        .collect();
    assert_eq!(said.len(), 1, "{said:#?}");
    assert_eq!(said[0]["fields"]["endpoint"], "no-volume");
    assert_eq!(said[0]["fields"]["variant"], "AllTraffic");
}

/// us-west-2 priced from the bundled snapshot, which has its hosting rates but no
/// ML storage rate: the accrual counts the instances, leaves the 30 GB volumes out
/// and every receipt says so (never a storage figure of $0, nor a silent gap), with
/// one WARN for the endpoint.
#[tokio::test]
async fn a_volume_whose_storage_rate_is_not_known_is_left_out_of_the_accrual_saying_so() {
    let logs = crate::support::logs::capture();
    let fake = FakeSageMaker::start().await;
    fake.add_endpoint(
        "rt",
        vec![FakeVariant::instance("AllTraffic", "ml.m5.xlarge", 2).with_volume(30)],
    );
    let (client, next) = an_hour_apart_on_the_snapshot(&fake, "us-west-2", "rt").await;
    let accrual = next.accrual.clone().expect("an accrual");
    // The snapshot's us-west-2 ml.m5.xlarge, $0.23/h: 2 instances × 1 h = $0.46.
    assert_eq!(accrual.accrued_usd, dec("0.46"));
    assert_eq!(accrual.storage_usd, None);
    for cost in [&next, &call(&client, "rt").await] {
        assert!(
            cost.notes.iter().any(|n| n.starts_with(
                "the variant's ML storage is not accrued: its rate is not known (30 GB a volume, "
            )),
            "{:?}",
            cost.notes
        );
    }
    let warned = logs
        .at_level("WARN")
        .into_iter()
        .filter(|l| {
            l["fields"]["message"]
                == "a variant's ML storage could not be priced: its accrual leaves it out"
        })
        .count();
    assert_eq!(warned, 1);
}

/// A variant scaled to 0 instances accrues nothing, even once its instance
/// type's rate is not known: AWS bills instance-hours, and none run. `rt`'s
/// `AllTraffic` on 2 × ml.g5.xlarge ($1.408/h, 2 × 1.408 = $2.816/h) from
/// t = 0; at 10 min an update puts it on an instance type no source prices
/// (the last known rate stays in force); at 20 min managed instance scaling
/// takes it to 0; at 12 h 20 min it is back on 2 × ml.g5.xlarge.
#[tokio::test]
async fn a_variant_scaled_to_zero_after_its_rate_became_unknown_accrues_nothing() {
    let fake = g5_endpoint(2).await;
    let (time, shared) = manual_clock();
    let client = refreshing_client(&fake, shared).await;
    call(&client, "rt").await; // t = 0: the accrual begins
    assert_eq!(fake.describe_calls(), 1);

    time.advance(Duration::from_secs(600)); // t = 10 min
    fake.add_endpoint(
        "rt",
        vec![FakeVariant::instance("AllTraffic", "ml.unpriced.xlarge", 2)],
    );
    assert!(refreshed(&fake, &client, 2).await);

    time.advance(Duration::from_secs(600)); // t = 20 min
    fake.set_instance_count("rt", "AllTraffic", 0);
    assert!(refreshed(&fake, &client, 3).await);

    // A call answered meanwhile (the profile lagging): its compute, on an
    // instance type no source prices, is unpriced, saying so; not $0, nor
    // priced at the old type's rate.
    time.advance(Duration::from_secs(6 * 3600)); // t = 6 h 20 min
    let at_zero = call(&client, "rt").await;
    match &compute(&at_zero).price {
        LinePrice::Unpriced { reason } => {
            assert!(reason.contains("ml.unpriced.xlarge"), "{reason}");
        }
        priced => panic!("a call at no known rate priced: {priced:?}"),
    }
    assert!(!at_zero.is_fully_priced());

    time.advance(Duration::from_secs(6 * 3600)); // t = 12 h 20 min
    put_g5(&fake, 2);
    assert!(refreshed(&fake, &client, 4).await);
    let next = call(&client, "rt").await;
    // AWS bills 2 instances for the 20 min (the last 10 at the last known
    // rate, as it stays in force), nothing at 0 instances:
    // 2.816 × 20 / 60 = 0.938666… (not 2.816 × (12 h + 20 min) = $34.725333…).
    let accrual = next.accrual.clone().expect("an accrual");
    assert_eq!(accrual.accrued_usd.round_dp(6), dec("0.938667"));
}

/// `rt`'s `AllTraffic` on 2 × ml.g5.xlarge ($1.408/h each) from t = 0, when
/// it is called; at 10 min managed instance scaling takes it to 0 instances;
/// at 30 min it is back up on 1 instance of a type no source prices (an
/// update of its config); then at each `(s, n)` of `scaled` (seconds from
/// t = 0, after 30 min, in order) on `n` instances of that type, as a refresh
/// finds. Returns the client's receipt of a call at 60 min.
async fn called_after_coming_back_on_an_unpriced_type(
    allocation: sagemeter::billing::Allocation,
    scaled: &[(u64, u32)],
) -> Cost {
    let fake = g5_endpoint(2).await;
    let (time, shared) = manual_clock();
    let client = refreshing(&fake.sdk_config().await, shared)
        .allocation(allocation)
        .build()
        .unwrap();
    call(&client, "rt").await; // t = 0: the accrual begins
    time.advance(Duration::from_secs(600)); // t = 10 min
    fake.set_instance_count("rt", "AllTraffic", 0);
    assert!(refreshed(&fake, &client, 2).await);
    time.advance(Duration::from_secs(1200)); // t = 30 min
    fake.add_endpoint(
        "rt",
        vec![FakeVariant::instance("AllTraffic", "ml.unpriced.xlarge", 1)],
    );
    assert!(refreshed(&fake, &client, 3).await);
    let (mut at, mut described) = (1800, 3);
    for &(on, instances) in scaled {
        fake.set_instance_count("rt", "AllTraffic", instances);
        time.advance(Duration::from_secs(on - at));
        (at, described) = (on, described + 1);
        assert!(refreshed(&fake, &client, described).await);
    }
    time.advance(Duration::from_secs(3600 - at)); // t = 60 min
    call(&client, "rt").await
}

/// A variant scaled to 0 instances that comes back up on an instance type no
/// source prices has no rate of its own in force: the last one stood at
/// nothing (0 instances), and the one before was another type's. AWS bills
/// each instance-hour of the variant's type, so the 30 min of 1 instance of
/// the unpriced type are an unknown cost, not $0: the receipt and its
/// accrual say so. The priced part: 2 instances × $1.408/h × 10/60 h =
/// 2.816 / 6 = $0.469333333333 (to 12 places), nothing at 0 instances.
#[tokio::test]
async fn a_variant_back_up_from_zero_on_an_unpriced_type_is_unpriced_on_its_accrual_not_0() {
    let next = called_after_coming_back_on_an_unpriced_type(
        sagemeter::billing::Allocation::ProcessorSharing,
        &[],
    )
    .await;
    let LinePrice::Unpriced { reason } = &compute(&next).price else {
        panic!("compute is unpriced: {:?}", compute(&next));
    };
    assert!(reason.contains("ml.unpriced.xlarge"), "{reason}");
    let accrual = next
        .accrual
        .clone()
        .expect("an accrual, saying what it leaves out");
    assert_eq!(accrual.accrued_usd, dec("0.469333333333"));
    assert!(
        next.notes.iter().any(|n| n.contains("variant `AllTraffic`")
            && n.contains("not priced")
            && n.contains("ml.unpriced.xlarge")),
        "{:?}",
        next.notes
    );
}

/// Amortised, the same call carries the gap stretch by stretch: the first
/// 10 min of 2 × ml.g5.xlarge, 2 × 10/60 = 0.333… instance-hours × $1.408 =
/// $0.469333333333, priced; nothing of the 20 min at 0 instances; and the
/// 30 min of 1 instance of the unpriced type, 1 × 30/60 = 0.5
/// instance-hours, unpriced (not the wall-clock hour at 1 instance, nor $0).
#[tokio::test]
async fn amortized_a_variant_back_up_from_zero_on_an_unpriced_type_is_charged_per_stretch() {
    use sagemeter::billing::Allocation;
    let next = called_after_coming_back_on_an_unpriced_type(Allocation::Amortized, &[]).await;
    assert_g5_priced_then_unpriced(&next, dec("0.5"));
}

/// `cost`'s compute lines, in order.
fn compute_lines(cost: &Cost) -> Vec<&sagemeter::billing::CostLine> {
    cost.lines
        .iter()
        .filter(|l| l.item == LineItem::Compute)
        .collect()
}

/// The amortised call's compute lines: the g5 stretch priced at
/// $0.469333333333 (2 × 10/60 instance-hours × $1.408), then the unpriced
/// type's `unpriced_hours` instance-hours, unpriced.
fn assert_g5_priced_then_unpriced(next: &Cost, unpriced_hours: Decimal) {
    let lines = compute_lines(next);
    assert_eq!(lines.len(), 2, "{lines:?}");
    let LinePrice::Priced { cost_usd, .. } = &lines[0].price else {
        panic!("the g5 stretch is priced: {lines:?}");
    };
    assert_eq!(*cost_usd, dec("0.469333333333"));
    let LinePrice::Unpriced { reason } = &lines[1].price else {
        panic!("the unpriced type's stretch is unpriced: {lines:?}");
    };
    assert!(reason.contains("ml.unpriced.xlarge"), "{reason}");
    assert_eq!(lines[1].quantity, unpriced_hours);
    assert!(!next.is_fully_priced());
}

/// The unpriced instance-hours follow every count a refresh finds on the
/// unpriced type, not the first one's: on 1 instance from 30 min, 0 at
/// 40 min, 2 from 50 min, the call at 60 min states 1 × 10/60 + 0 × 10/60 +
/// 2 × 10/60 = 0.5 instance-hours unpriced (not 1 × 10/60 = 0.1666…, the
/// count stuck at 0 from 40 min); the priced g5 stretch as above.
#[tokio::test]
async fn amortized_unpriced_instance_hours_follow_a_scale_to_zero_and_back() {
    use sagemeter::billing::Allocation;
    let scaled = [(2400, 0), (3000, 2)];
    let next = called_after_coming_back_on_an_unpriced_type(Allocation::Amortized, &scaled).await;
    assert_g5_priced_then_unpriced(&next, dec("0.5"));
}

/// A scale-out on the unpriced type counts from the refresh that finds it:
/// 1 instance from 30 min, 3 from 45 min, the call at 60 min states
/// 1 × 15/60 + 3 × 15/60 = 0.25 + 0.75 = 1 instance-hour unpriced (not
/// 1 × 30/60 = 0.5, the count stuck at 1).
#[tokio::test]
async fn amortized_unpriced_instance_hours_follow_a_scale_out() {
    use sagemeter::billing::Allocation;
    let next =
        called_after_coming_back_on_an_unpriced_type(Allocation::Amortized, &[(2700, 3)]).await;
    assert_g5_priced_then_unpriced(&next, dec("1"));
}
