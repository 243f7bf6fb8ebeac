//! Inference components and multi-model endpoints: the cost of each model on a
//! shared endpoint, against the in-process SageMaker fake (which serves
//! `ListInferenceComponents` and `DescribeInferenceComponent`) and the Price List
//! fake (whose ml.g5.12xlarge product carries `vCpu` 48, `memory` 192 GiB, `gpu` 4).
//!
//! Every expected figure is worked by hand from the rates stated here: ml.g5.12xlarge
//! $7.09 per instance-hour, ml.m5.xlarge $0.23. Calls are held at the fake while a
//! manual clock moves 36 s (= 0.01 h), so each call's share is exact.

use crate::support::fake_pricelist::{FakePriceList, docs};
use crate::support::fake_sagemaker::{FakeComponent, FakeSageMaker, FakeVariant};
use crate::support::manual_clock;
use crate::support::receipts::assert_not_noted_containing;
use aws_sdk_sagemakerruntime::primitives::Blob;
use aws_smithy_async::test_util::ManualTimeSource;
use aws_smithy_async::time::SharedTimeSource;
use rust_decimal::Decimal;
use sagemeter::billing::{LineItem, LinePrice};
use sagemeter::endpoint::{ComponentProfile, CopyReservation, EndpointProfile, VariantProfile};
use sagemeter::ledger::JsonlLedger;
use sagemeter::pricing::{InstanceResources, PriceKey};
use sagemeter::report::{GroupBy, ReportOptions, report_file};
use sagemeter::{Client, Cost};
use std::time::Duration;

fn dec(s: &str) -> Decimal {
    s.parse().unwrap()
}

/// `shared`: 2 × ml.g5.12xlarge (4 GPUs each) hosting `small` (1 copy of 1 GPU)
/// and `large` (1 copy of 3 GPUs): half the 8 GPUs reserved, half free.
async fn shared_endpoint() -> FakeSageMaker {
    shared_endpoint_hosting(FakeComponent::gpus("large", "AllTraffic", 1, 3.0)).await
}

/// `shared`: 2 × ml.g5.12xlarge hosting `small` (1 copy of 1 GPU) and `other`.
async fn shared_endpoint_hosting(other: FakeComponent) -> FakeSageMaker {
    let fake = FakeSageMaker::start().await;
    fake.add_endpoint(
        "shared",
        vec![FakeVariant::instance("AllTraffic", "ml.g5.12xlarge", 2).without_model()],
    );
    fake.add_component("shared", FakeComponent::gpus("small", "AllTraffic", 1, 1.0));
    fake.add_component("shared", other);
    fake
}

/// A client of `fake`'s endpoints priced by `pricelist`, on the clock `time`.
async fn client_of(
    fake: &FakeSageMaker,
    pricelist: &FakePriceList,
    time: SharedTimeSource,
) -> Client {
    Client::builder(&fake.sdk_config().await)
        .pricing_config(&pricelist.sdk_config("us-east-1"))
        .time_source(time)
        .build()
        .unwrap()
}

/// A client as [`client_of`] makes, given `profile` for its endpoint instead of
/// describing it.
async fn client_with_profile(
    fake: &FakeSageMaker,
    pricelist: &FakePriceList,
    profile: EndpointProfile,
    time: SharedTimeSource,
) -> Client {
    Client::builder(&fake.sdk_config().await)
        .pricing_config(&pricelist.sdk_config("us-east-1"))
        .endpoint_profile(profile)
        .time_source(time)
        .build()
        .unwrap()
}

/// A profile of `shared` set by hand: its 2 × ml.g5.12xlarge, hosting `component`
/// with `copies` copies of 1 GPU each.
fn profile_by_hand(component: &str, copies: u32) -> EndpointProfile {
    EndpointProfile::new(
        "shared",
        vec![VariantProfile::instance("AllTraffic", "ml.g5.12xlarge", 2)],
    )
    .with_component(ComponentProfile::new(
        component,
        "AllTraffic",
        copies,
        CopyReservation::accelerators(Decimal::ONE),
    ))
}

/// [`profile_by_hand`] of `small` with `copies` copies, and its adapter
/// `small-lora`.
fn lora_profile_by_hand(copies: u32) -> EndpointProfile {
    profile_by_hand("small", copies).with_component(ComponentProfile::adapter(
        "small-lora",
        "AllTraffic",
        "small",
    ))
}

/// [`shared_endpoint`] with `small-lora`, a LoRA adapter of `small`, as AWS
/// describes adapters: no variant, no compute requirements, no copies.
async fn shared_endpoint_with_lora() -> FakeSageMaker {
    let fake = shared_endpoint().await;
    fake.add_component("shared", FakeComponent::adapter("small-lora", "small"));
    fake
}

async fn price_list() -> FakePriceList {
    let pricelist = FakePriceList::start().await;
    pricelist.add_documents([
        docs::with_attributes(
            docs::hosting("us-east-1", "ml.g5.12xlarge", "7.0900000000"),
            &[("vCpu", "48"), ("memory", "192 GiB"), ("gpu", "4")],
        ),
        docs::hosting("us-east-1", "ml.m5.xlarge", "0.2300000000"),
        docs::data_in("us-east-1", "0.0160000000"),
        docs::data_out("us-east-1", "0.0160000000"),
    ]);
    pricelist
}

async fn call(client: &Client, component: Option<&str>, model: Option<&str>) -> Cost {
    let endpoint = if model.is_some() { "mme" } else { "shared" };
    let mut request = client
        .invoke_endpoint()
        .endpoint_name(endpoint)
        .body(Blob::new("{}"));
    if let Some(component) = component {
        request = request.inference_component_name(component);
    }
    if let Some(model) = model {
        request = request.target_model(model);
    }
    request
        .send()
        .await
        .expect("the call succeeds")
        .into_parts()
        .1
}

fn compute(cost: &Cost) -> &sagemeter::billing::CostLine {
    cost.lines
        .iter()
        .find(|l| l.item == LineItem::Compute)
        .expect("a compute line")
}

/// Holds the fake, starts one call per entry at once, moves the clock 36 s, then
/// lets them all answer.
async fn held_for_36_seconds(
    fake: &FakeSageMaker,
    client: &Client,
    time: &ManualTimeSource,
    calls: &[(Option<&'static str>, Option<&'static str>)],
) -> Vec<Cost> {
    let before = fake.invocations();
    fake.hold();
    let running: Vec<_> = calls
        .iter()
        .map(|&(component, model)| {
            let client = client.clone();
            tokio::spawn(async move { call(&client, component, model).await })
        })
        .collect();
    fake.wait_for_invocations(before + calls.len() as u64).await;
    time.advance(Duration::from_secs(36));
    fake.release();
    let mut costs = Vec::new();
    for running in running {
        costs.push(running.await.unwrap());
    }
    costs
}

/// [`held_for_36_seconds`] of a call to `small-lora` and one to `small` at once:
/// their receipts, in that order.
async fn lora_and_base_held_for_36_seconds(
    fake: &FakeSageMaker,
    client: &Client,
    time: &ManualTimeSource,
) -> Vec<Cost> {
    held_for_36_seconds(
        fake,
        client,
        time,
        &[(Some("small-lora"), None), (Some("small"), None)],
    )
    .await
}

/// Asserts that each receipt's compute costs `usd` and that none says its call
/// was allocated on a clock of its own.
#[track_caller]
fn assert_each_costs_on_a_shared_clock(costs: &[Cost], usd: Decimal) {
    for cost in costs {
        assert_eq!(
            compute(cost).cost_usd(),
            Some(usd),
            "{:?}",
            cost.inference_component
        );
        assert_not_noted_containing(cost, "clock of its own");
    }
}

/// Why the receipt's compute line is unpriced; it must be.
#[track_caller]
fn unpriced_reason(cost: &Cost) -> &str {
    let LinePrice::Unpriced { reason } = &compute(cost).price else {
        panic!("expected an unpriced compute line: {cost:#?}");
    };
    reason
}

#[tokio::test]
async fn two_components_pay_for_the_gpus_they_reserve_and_the_rest_is_unreserved() {
    let fake = shared_endpoint().await;
    let pricelist = price_list().await;
    let (time, shared) = manual_clock();
    let dir = tempfile::tempdir().unwrap();
    let ledger = dir.path().join("calls.jsonl");
    let client = Client::builder(&fake.sdk_config().await)
        .pricing_config(&pricelist.sdk_config("us-east-1"))
        .time_source(shared)
        .sink(JsonlLedger::open(&ledger).unwrap())
        .build()
        .unwrap();

    let profile = client.meter().endpoint_profile("shared").await.unwrap();
    let names: Vec<(&str, u32)> = profile
        .components
        .iter()
        .map(|c| (c.name.as_str(), c.copies))
        .collect();
    assert_eq!(names, [("large", 1), ("small", 1)]);

    let costs = held_for_36_seconds(
        &fake,
        &client,
        &time,
        &[(Some("small"), None), (Some("large"), None)],
    )
    .await;
    let small = costs
        .iter()
        .find(|c| c.inference_component.as_deref() == Some("small"))
        .unwrap();
    let large = costs
        .iter()
        .find(|c| c.inference_component.as_deref() == Some("large"))
        .unwrap();
    // small: alone on its one copy for 0.01 h; a copy is 1 of 4 GPUs = 0.25 of an
    // instance: 0.0025 instance-hours × 7.09 = 0.017725 USD.
    assert_eq!(compute(small).quantity, dec("0.0025"));
    assert_eq!(compute(small).cost_usd(), Some(dec("0.017725")));
    // large: 3 of 4 GPUs = 0.75: 0.0075 instance-hours × 7.09 = 0.053175 USD.
    assert_eq!(compute(large).quantity, dec("0.0075"));
    assert_eq!(compute(large).cost_usd(), Some(dec("0.053175")));
    assert_eq!(small.variant.as_deref(), Some("AllTraffic"));

    // The two instances cost 2 × 7.09 × 0.01 = 0.1418 USD over those 36 s. The calls
    // were allocated 0.0709; the other half of the GPUs was reserved by nobody:
    // 0.1418 × 0.5 = 0.0709 unreserved. Allocated + unreserved = accrued.
    let last = costs.iter().max_by_key(|c| c.running_client_usd).unwrap();
    let accrual = last.accrual.clone().unwrap();
    assert_eq!(accrual.accrued_usd, dec("0.1418"));
    assert_eq!(accrual.allocated_usd, dec("0.0709"));
    assert_eq!(accrual.unreserved_usd, Some(dec("0.0709")));

    // The running totals keep each component apart, inside its endpoint's.
    let totals = client.meter().totals();
    assert_eq!(totals.by_component["shared/small"], small.cost_usd);
    assert_eq!(totals.by_component["shared/large"], large.cost_usd);
    assert_eq!(totals.by_endpoint.len(), 1);
    assert_eq!(
        totals.by_endpoint["shared"],
        small.cost_usd + large.cost_usd
    );

    // The ledger keeps the component; a report groups by it.
    client.meter().flush().await.unwrap();
    let report = report_file(&ledger, &ReportOptions::new(GroupBy::Component)).unwrap();
    let groups: Vec<(&str, Decimal)> = report
        .groups
        .iter()
        .map(|g| (g.key.as_str(), g.cost_usd))
        .collect();
    assert_eq!(
        groups,
        [
            ("shared/large", large.cost_usd),
            ("shared/small", small.cost_usd)
        ]
    );
    let read = sagemeter::ledger::read_all(&ledger).unwrap();
    assert_eq!(read.records.len(), 2);
    assert!(read.records.iter().all(|c| c.inference_component.is_some()));
}

#[tokio::test]
async fn components_that_reserve_more_than_the_instance_by_their_own_resources_share_it() {
    // One ml.m5.4xlarge (16 vCPUs, 64 GiB, 0.922 USD/h) hosting `cpu` (a copy of 10
    // cores and 8 GiB: 0.625 of it by CPU) and `mem` (4 cores and 40 GiB: 0.625 by
    // memory): 1.25 instances' worth on one, so each share is scaled to 0.5.
    let fake = FakeSageMaker::start().await;
    fake.add_endpoint(
        "shared",
        vec![FakeVariant::instance("AllTraffic", "ml.m5.4xlarge", 1).without_model()],
    );
    fake.add_component(
        "shared",
        FakeComponent::cpus("cpu", "AllTraffic", 1, 10.0, 8 * 1024),
    );
    fake.add_component(
        "shared",
        FakeComponent::cpus("mem", "AllTraffic", 1, 4.0, 40 * 1024),
    );
    let pricelist = FakePriceList::start().await;
    pricelist.add_documents([
        docs::hosting("us-east-1", "ml.m5.4xlarge", "0.9220000000"),
        docs::data_in("us-east-1", "0.0160000000"),
        docs::data_out("us-east-1", "0.0160000000"),
    ]);
    let (time, shared) = manual_clock();
    let client = Client::builder(&fake.sdk_config().await)
        .pricing_config(&pricelist.sdk_config("us-east-1"))
        .instance_resources("ml.m5.4xlarge", InstanceResources::new(16, 64, 0))
        .time_source(shared)
        .build()
        .unwrap();
    client.meter().endpoint_profile("shared").await.unwrap();
    let costs = held_for_36_seconds(
        &fake,
        &client,
        &time,
        &[(Some("cpu"), None), (Some("mem"), None)],
    )
    .await;
    // Each alone on its copy for 0.01 h × 0.5 of the instance = 0.005
    // instance-hours × 0.922 USD/h = 0.00461 USD: together the instance's
    // 1 × 0.922 × 0.01 = 0.00922 USD, not 1.25 times it.
    for cost in &costs {
        assert_eq!(compute(cost).quantity, dec("0.005"));
        assert_eq!(compute(cost).cost_usd(), Some(dec("0.00461")));
    }
    let last = costs.iter().max_by_key(|c| c.running_client_usd).unwrap();
    let accrual = last.accrual.clone().unwrap();
    assert_eq!(accrual.accrued_usd, dec("0.00922"));
    assert_eq!(accrual.allocated_usd, dec("0.00922"));
    assert_eq!(accrual.utilisation, Some(Decimal::ONE));
}

#[tokio::test]
async fn a_component_that_scales_its_copies_is_priced_on_them_after_the_refresh() {
    let fake = shared_endpoint().await;
    let pricelist = price_list().await;
    let (time, shared) = manual_clock();
    let client = Client::builder(&fake.sdk_config().await)
        .pricing_config(&pricelist.sdk_config("us-east-1"))
        .discovery_refresh(Duration::from_secs(60))
        .time_source(shared)
        .build()
        .unwrap();
    client.meter().endpoint_profile("shared").await.unwrap();

    // Two calls share small's one copy: half a copy each for 0.01 h = 0.005
    // copy-hours × 0.25 = 0.00125 instance-hours × 7.09 = 0.0088625 USD each.
    let costs = held_for_36_seconds(
        &fake,
        &client,
        &time,
        &[(Some("small"), None), (Some("small"), None)],
    )
    .await;
    for cost in &costs {
        assert_eq!(compute(cost).cost_usd(), Some(dec("0.0088625")));
    }

    // small scales to 2 copies; the profile is refreshed after 60 s.
    fake.set_copies("small", 2);
    time.advance(Duration::from_secs(61));
    call(&client, Some("small"), None).await; // the stale profile; a refresh starts
    let mut refreshed = false;
    for _ in 0..200 {
        let profile = client.meter().endpoint_profile("shared").await.unwrap();
        refreshed = profile.component("small").is_some_and(|c| c.copies == 2);
        if refreshed {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(refreshed, "the copy count never refreshed to 2");
    // Now each call has a copy to itself: 0.01 copy-hours × 0.25 × 7.09 = 0.017725.
    let costs = held_for_36_seconds(
        &fake,
        &client,
        &time,
        &[(Some("small"), None), (Some("small"), None)],
    )
    .await;
    for cost in &costs {
        assert_eq!(compute(cost).cost_usd(), Some(dec("0.017725")));
    }
}

/// A component created after the endpoint was described is not in its profile:
/// SageMaker served a call naming it, so the profile is stale. The call is
/// unpriced (its copy's share is not known), never the variant's whole price,
/// and the profile is described again then, not at the next scheduled refresh
/// (60 s): the next calls are priced.
#[tokio::test]
async fn a_call_to_a_component_created_since_the_profile_has_it_described_again() {
    let fake = shared_endpoint().await;
    let pricelist = price_list().await;
    let (time, shared) = manual_clock();
    let client = Client::builder(&fake.sdk_config().await)
        .pricing_config(&pricelist.sdk_config("us-east-1"))
        .discovery_refresh(Duration::from_secs(60))
        .time_source(shared)
        .build()
        .unwrap();
    let profile = client.meter().endpoint_profile("shared").await.unwrap();
    assert!(profile.component("fresh").is_none());
    let described = fake.describe_calls();

    // `fresh` (1 copy of 1 GPU) is created; 11 s on, a call names it.
    fake.add_component("shared", FakeComponent::gpus("fresh", "AllTraffic", 1, 1.0));
    time.advance(Duration::from_secs(11));
    let first = call(&client, Some("fresh"), None).await;
    let reason = unpriced_reason(&first);
    assert!(
        reason.contains("`fresh` is not among the variant's components")
            && reason.contains("described again"),
        "{reason}"
    );

    // Described again within the 60 s of discovery_refresh: 11 s in.
    let mut listed = false;
    for _ in 0..500 {
        let profile = client.meter().endpoint_profile("shared").await.unwrap();
        listed = profile.component("fresh").is_some_and(|c| c.copies == 1);
        if listed {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(listed, "the profile was not described again");
    assert!(fake.describe_calls() > described);

    // Now priced: alone on its one copy for 36 s = 0.01 h; 1 of an ml.g5.12xlarge's
    // 4 GPUs = 0.25: 0.0025 instance-hours × $7.09 = $0.017725.
    let costs = held_for_36_seconds(&fake, &client, &time, &[(Some("fresh"), None)]).await;
    assert_eq!(compute(&costs[0]).quantity, dec("0.0025"));
    assert_eq!(compute(&costs[0]).cost_usd(), Some(dec("0.017725")));
}

#[tokio::test]
async fn an_adapter_runs_on_its_base_component_s_copies_at_the_base_s_share() {
    // `small-lora` is a LoRA adapter of `small` (1 copy of 1 of an ml.g5.12xlarge's
    // 4 GPUs), described as AWS describes adapters: no variant, no compute
    // requirements, no copies. AWS bills the instances; the adapter's calls run on
    // the base's copy.
    let fake = shared_endpoint_with_lora().await;
    let pricelist = price_list().await;
    let (time, shared) = manual_clock();
    let client = client_of(&fake, &pricelist, shared).await;
    let profile = client.meter().endpoint_profile("shared").await.unwrap();
    let adapter = profile
        .component("small-lora")
        .expect("the adapter is discovered");
    assert_eq!(adapter.base.as_deref(), Some("small"));
    assert_eq!(adapter.variant, "AllTraffic", "the base's variant");

    // Alone on small's copy for 0.01 h: 0.01 × 0.25 = 0.0025 instance-hours × 7.09
    // = 0.017725 USD, as a call to `small` itself.
    let alone = held_for_36_seconds(&fake, &client, &time, &[(Some("small-lora"), None)]).await;
    assert_eq!(compute(&alone[0]).quantity, dec("0.0025"));
    assert_eq!(compute(&alone[0]).cost_usd(), Some(dec("0.017725")));
    assert_eq!(alone[0].inference_component.as_deref(), Some("small-lora"));
    // The adapter reserves nothing: half of the 8 GPUs are still nobody's
    // (small 1 + large 3). Over the 36 s the instances cost 2 × 7.09 × 0.01 =
    // 0.1418 USD, of which 0.0709 unreserved.
    let accrual = alone[0].accrual.clone().unwrap();
    assert_eq!(accrual.unreserved_usd, Some(dec("0.0709")));

    // With a call to the base at the same time, the two share the one copy: half
    // of it each for 0.01 h = 0.005 copy-hours × 0.25 × 7.09 = 0.0088625 USD.
    let both = lora_and_base_held_for_36_seconds(&fake, &client, &time).await;
    assert_each_costs_on_a_shared_clock(&both, dec("0.0088625"));
    // Each keeps its own running total: the adapter 0.017725 + 0.0088625.
    let totals = client.meter().totals();
    assert_eq!(
        totals.by_component["shared/small-lora"],
        dec("0.0265875") + data(&alone[0]) + data(&both[0])
    );
}

/// The first calls of a fresh client, an adapter's and its base's at once: once
/// the endpoint's profile is at hand (warmed by `endpoint_profile`, or set by
/// hand), the adapter's call takes its seat on its base's clock from its start,
/// and the two share the base's one copy, as in the test above.
#[tokio::test]
async fn an_adapter_s_first_call_shares_its_base_s_copy_once_the_profile_is_at_hand() {
    let fake = shared_endpoint_with_lora().await;
    let pricelist = price_list().await;
    let (time, shared) = manual_clock();
    // Warmed: described, not yet applied to the sharing clocks by any call.
    let warmed = client_of(&fake, &pricelist, shared.clone()).await;
    warmed.meter().endpoint_profile("shared").await.unwrap();
    // Set by hand: at hand from the start, applied by a call's pricing only.
    let by_hand = client_with_profile(&fake, &pricelist, lora_profile_by_hand(1), shared).await;
    for client in [&warmed, &by_hand] {
        // small's one copy holds 1 of an ml.g5.12xlarge's 4 GPUs: a share of 0.25.
        // Two calls on it for 0.01 h: 0.005 copy-hours each × 0.25 = 0.00125
        // instance-hours × 7.09 USD = 0.0088625 USD each; together 0.017725, the
        // copy's cost over the 36 s (0.01 × 0.25 × 7.09), not twice it.
        let both = lora_and_base_held_for_36_seconds(&fake, client, &time).await;
        assert_each_costs_on_a_shared_clock(&both, dec("0.0088625"));
    }
}

/// Before any profile of the endpoint is known, an adapter's call cannot be told
/// from a component with copies of its own: it is allocated on a clock of its
/// own, and its receipt says so.
#[tokio::test]
async fn an_adapter_s_call_begun_before_any_profile_says_it_was_allocated_apart() {
    let fake = shared_endpoint_with_lora().await;
    let pricelist = price_list().await;
    let (time, shared) = manual_clock();
    let client = client_of(&fake, &pricelist, shared).await;
    let both = lora_and_base_held_for_36_seconds(&fake, &client, &time).await;
    // Each alone on a copy for 0.01 h at the base's share: 0.01 × 0.25 × 7.09 =
    // 0.017725 USD; together twice the copy's cost over the 36 s.
    let [adapter, base] = &both[..] else {
        unreachable!()
    };
    assert_eq!(compute(adapter).cost_usd(), Some(dec("0.017725")));
    assert_eq!(compute(base).cost_usd(), Some(dec("0.017725")));
    assert!(
        adapter.notes.iter().any(|n| n.contains(
            "`small-lora` is an adapter of `small`, whose copies its calls share, but this \
             call began before the endpoint's profile was known"
        )),
        "{:?}",
        adapter.notes
    );
    // Later calls share the base's clock: half of the copy each, 0.005
    // copy-hours × 0.25 × 7.09 = 0.0088625 USD.
    let later = lora_and_base_held_for_36_seconds(&fake, &client, &time).await;
    assert_each_costs_on_a_shared_clock(&later, dec("0.0088625"));
}

/// The data lines of a receipt (in and out), to take them apart from compute.
fn data(cost: &Cost) -> Decimal {
    cost.lines
        .iter()
        .filter(|l| l.item != LineItem::Compute)
        .filter_map(|l| l.cost_usd())
        .sum()
}

#[tokio::test]
async fn copies_asked_for_but_not_deployed_hold_nothing_and_a_vanished_component_is_left_out() {
    // `large` is still being created: 4 copies of 3 GPUs asked for, none deployed
    // (no CurrentCopyCount). `gone` was listed, then deleted before it was
    // described.
    let fake =
        shared_endpoint_hosting(FakeComponent::gpus("large", "AllTraffic", 4, 3.0).creating())
            .await;
    fake.add_component(
        "shared",
        FakeComponent::gpus("gone", "AllTraffic", 1, 1.0).vanishing(),
    );
    let pricelist = price_list().await;
    let (time, shared) = manual_clock();
    let client = client_of(&fake, &pricelist, shared).await;
    let profile = client.meter().endpoint_profile("shared").await.unwrap();
    let copies: Vec<(&str, u32)> = profile
        .components
        .iter()
        .map(|c| (c.name.as_str(), c.copies))
        .collect();
    assert_eq!(copies, [("large", 0), ("small", 1)]);

    // small alone on its copy: 0.01 h × 0.25 × 7.09 = 0.017725 USD. Counting
    // large's 4 asked-for copies (4 × 0.75 = 3 instances' worth, 3.25 with small's
    // on 2 instances) would have scaled small's share down to 0.25 × 2 ÷ 3.25.
    let costs = held_for_36_seconds(&fake, &client, &time, &[(Some("small"), None)]).await;
    assert_eq!(compute(&costs[0]).cost_usd(), Some(dec("0.017725")));
    // Only small's 1 of 8 GPUs is reserved: 0.1418 USD × 7/8 = 0.124075 unreserved.
    let accrual = costs[0].accrual.clone().unwrap();
    assert_eq!(accrual.unreserved_usd, Some(dec("0.124075")));

    // A call to large, whose profile shows no copy: its copy's share is not known
    // (billing it as one copy would bill capacity the accrual counts as
    // unreserved), so its compute is unpriced, saying why, never a guess.
    let large = call(&client, Some("large"), None).await;
    let reason = unpriced_reason(&large);
    assert!(
        reason.contains("shows no copy of inference component `large`"),
        "{reason}"
    );
    assert!(!large.is_fully_priced());
}

/// Why a call to `component` of `fake`'s `shared`, by a client given `profile`,
/// has its compute unpriced; it must be.
async fn unpriced_under_a_profile_by_hand(
    fake: &FakeSageMaker,
    profile: EndpointProfile,
    component: &str,
) -> String {
    let pricelist = price_list().await;
    let (_time, shared) = manual_clock();
    let client = client_with_profile(fake, &pricelist, profile, shared).await;
    let cost = call(&client, Some(component), None).await;
    unpriced_reason(&cost).to_owned()
}

/// A profile set by hand that shows no copy of the component called: the reason
/// says to set its copies in that profile, which no refresh would change.
#[tokio::test]
async fn a_component_with_no_copy_in_a_profile_set_by_hand_says_to_set_its_copies_there() {
    let fake = shared_endpoint().await;
    let reason =
        unpriced_under_a_profile_by_hand(&fake, profile_by_hand("llama", 0), "llama").await;
    assert!(
        reason.contains("shows no copy of inference component `llama`")
            && reason.contains("set its copies in the profile set for the endpoint")
            && reason.contains("ClientBuilder::endpoint_profile"),
        "{reason}"
    );
    assert!(!reason.contains("described again"), "{reason}");
    assert!(!reason.contains("the profile is refreshed"), "{reason}");
}

/// A profile set by hand whose adapter's base shows no copy: the adapter has no
/// copies of its own to set (it runs on its base's), so the reason names the
/// base as the component whose copies to set.
#[tokio::test]
async fn an_adapter_whose_base_has_no_copy_in_a_profile_set_by_hand_says_to_set_the_bases_copies() {
    let fake = shared_endpoint_with_lora().await;
    let reason =
        unpriced_under_a_profile_by_hand(&fake, lora_profile_by_hand(0), "small-lora").await;
    assert!(
        reason.contains("shows no copy of inference component `small`")
            && reason.contains("the base adapter `small-lora` runs on")
            && reason.contains("set the copies of its base `small` in the profile set")
            && reason.contains("ClientBuilder::endpoint_profile"),
        "{reason}"
    );
    // Not the adapter's own copies, which an adapter's profile holds at 0.
    assert!(!reason.contains("set its copies"), "{reason}");
    assert!(!reason.contains("described again"), "{reason}");
}

#[tokio::test]
async fn the_discovery_time_limit_bounds_all_its_requests_together() {
    // Each control-plane request answers after 150 ms; discovering `shared` takes
    // DescribeEndpoint, DescribeEndpointConfig, two pages of
    // ListInferenceComponents and the descriptions: at least 5 × 150 ms = 750 ms,
    // each request well inside a 400 ms limit, all of them not.
    let fake = shared_endpoint().await;
    *fake.state.control_plane_delay.lock().unwrap() = Duration::from_millis(150);
    let pricelist = price_list().await;
    let client = |limit| {
        let (sdk, pricing) = (fake.sdk_config(), pricelist.sdk_config("us-east-1"));
        async move {
            Client::builder(&sdk.await)
                .pricing_config(&pricing)
                .discovery_timeout(limit)
                .build()
                .unwrap()
        }
    };
    let bounded = client(Duration::from_millis(400)).await;
    let err = bounded
        .meter()
        .endpoint_profile("shared")
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("within the discovery's time limit (400ms"),
        "{err}"
    );
    // With room for all of them, the two components are described at once: the
    // discovery ends.
    let roomy = client(Duration::from_secs(30)).await;
    let profile = roomy.meter().endpoint_profile("shared").await.unwrap();
    assert_eq!(profile.components.len(), 2);
}

#[tokio::test]
async fn without_the_instance_s_resources_a_component_call_is_unpriced_with_why() {
    let fake = shared_endpoint().await;
    let (time, shared) = manual_clock();
    // A stated rate carries no product attributes: the GPUs per instance are unknown.
    let unknown = Client::builder(&fake.sdk_config().await)
        .price_override(
            PriceKey::hosting("us-east-1", "ml.g5.12xlarge"),
            dec("7.09"),
        )
        .time_source(shared.clone())
        .build()
        .unwrap();
    let cost = call(&unknown, Some("small"), None).await;
    let reason = unpriced_reason(&cost);
    assert!(
        reason.starts_with(
            "inference component `small`: the accelerators of an ml.g5.12xlarge are unknown \
             (the rate is a price override, which carries no instance resources)"
        ),
        "{reason}"
    );
    // A component the endpoint does not host: unpriced too, never the whole variant.
    let cost = call(&unknown, Some("nope"), None).await;
    let reason = unpriced_reason(&cost);
    assert!(
        reason.contains("`nope` is not among the variant's components"),
        "{reason}"
    );

    // Stated on the builder, the resources price it: 1 of 4 GPUs for 0.01 h.
    let stated = Client::builder(&fake.sdk_config().await)
        .price_override(
            PriceKey::hosting("us-east-1", "ml.g5.12xlarge"),
            dec("7.09"),
        )
        .instance_resources("ml.g5.12xlarge", InstanceResources::new(48, 192, 4))
        .time_source(shared)
        .build()
        .unwrap();
    stated.meter().endpoint_profile("shared").await.unwrap();
    let costs = held_for_36_seconds(&fake, &stated, &time, &[(Some("small"), None)]).await;
    assert_eq!(compute(&costs[0]).cost_usd(), Some(dec("0.017725")));
}

/// Priced from the bundled snapshot (the Price List unreachable), a component's
/// share is unknown because the snapshot carries no instance resources, and the
/// reason says so: the Price List was never asked, so it did not "not say".
#[tokio::test]
async fn a_component_priced_from_the_snapshot_says_the_snapshot_carries_no_resources() {
    let fake = shared_endpoint().await;
    let (_time, shared) = manual_clock();
    let nowhere = crate::support::fake_pricelist::refused_url();
    let client = Client::builder(&fake.sdk_config().await)
        .pricing_config(&crate::support::fake_pricelist::sdk_config_for(
            &nowhere,
            "us-east-1",
        ))
        .time_source(shared)
        .build()
        .unwrap();
    let cost = call(&client, Some("small"), None).await;
    let reason = unpriced_reason(&cost);
    assert!(
        reason.starts_with(
            "inference component `small`: the accelerators of an ml.g5.12xlarge are unknown \
             (the rate is from the price snapshot, which carries no instance resources: only \
             a live Price List answer does); state them with \
             ClientBuilder::instance_resources"
        ),
        "{reason}"
    );
    assert!(!reason.contains("did not say"), "{reason}");
}

#[tokio::test]
async fn a_multi_model_endpoint_shares_its_instance_among_the_target_models() {
    let fake = FakeSageMaker::start().await;
    fake.add_endpoint(
        "mme",
        vec![FakeVariant::instance("AllTraffic", "ml.m5.xlarge", 1)],
    );
    let pricelist = price_list().await;
    let (time, shared) = manual_clock();
    let client = client_of(&fake, &pricelist, shared).await;
    client.meter().endpoint_profile("mme").await.unwrap();

    let costs = held_for_36_seconds(
        &fake,
        &client,
        &time,
        &[
            (None, Some("model-a.tar.gz")),
            (None, Some("model-b.tar.gz")),
            (None, Some("model-c.tar.gz")),
        ],
    )
    .await;
    // Three calls on one instance for 0.01 h: a third each, 0.003333333333333333
    // instance-hours (18 places, rounded down) × 0.23 = 0.000766666666 (rounded down).
    let mut models: Vec<&str> = costs
        .iter()
        .map(|c| c.target_model.as_deref().unwrap())
        .collect();
    models.sort_unstable();
    assert_eq!(
        models,
        ["model-a.tar.gz", "model-b.tar.gz", "model-c.tar.gz"]
    );
    for cost in &costs {
        assert_eq!(compute(cost).quantity, dec("0.003333333333333333"));
        assert_eq!(compute(cost).cost_usd(), Some(dec("0.000766666666")));
        assert_eq!(cost.inference_component, None);
    }
    // Together they never exceed what the instance cost: 0.23 × 0.01 = 0.0023.
    let last = costs.iter().max_by_key(|c| c.running_client_usd).unwrap();
    assert_eq!(last.accrual.clone().unwrap().accrued_usd, dec("0.0023"));
    assert_eq!(last.accrual.clone().unwrap().unreserved_usd, None);
    // The fake saw each TargetModel header.
    let sent: Vec<Option<String>> = fake
        .state
        .invoked
        .lock()
        .unwrap()
        .iter()
        .map(|(_, model)| model.clone())
        .collect();
    assert_eq!(sent.iter().flatten().count(), 3);
}

#[tokio::test]
async fn metrics_label_a_call_with_a_component_its_endpoint_lists_and_never_with_its_target_model()
{
    use metrics_util::debugging::DebuggingRecorder;
    let recorder = DebuggingRecorder::new();
    let _guard = metrics::set_default_local_recorder(&recorder);
    let fake = shared_endpoint().await;
    fake.add_endpoint(
        "mme",
        vec![FakeVariant::instance("AllTraffic", "ml.m5.xlarge", 1)],
    );
    let pricelist = price_list().await;
    let client = Client::builder(&fake.sdk_config().await)
        .pricing_config(&pricelist.sdk_config("us-east-1"))
        .build()
        .unwrap();
    call(&client, Some("small"), None).await;
    call(&client, Some("small"), None).await;
    call(&client, None, Some("model-a.tar.gz")).await;
    // Names the endpoint does not list (the request's own, answered all the same):
    // one `_other` series for all three, none of their own.
    for made_up in ["nope-1", "nope-2", "nope-3"] {
        call(&client, Some(made_up), None).await;
    }

    let invocations = crate::support::counter_values(&recorder, "sagemeter_invocations_total");
    // Calls per label set, the price source (live, then cache) left out.
    let count = |wanted: &[(&str, &str)]| -> u64 {
        invocations
            .iter()
            .filter(|(labels, _)| {
                let mut without_source: Vec<(&str, &str)> = labels
                    .iter()
                    .filter(|(k, _)| k != "price_source")
                    .map(|(k, v)| (k.as_str(), v.as_str()))
                    .collect();
                without_source.sort_unstable();
                let mut wanted = wanted.to_vec();
                wanted.sort_unstable();
                without_source == wanted
            })
            .map(|(_, n)| n)
            .sum()
    };
    assert_eq!(
        count(&[
            ("endpoint", "shared"),
            ("region", "us-east-1"),
            ("variant", "AllTraffic"),
            ("inference_component", "small"),
        ]),
        2,
        "{invocations:#?}"
    );
    assert_eq!(
        count(&[
            ("endpoint", "shared"),
            ("region", "us-east-1"),
            ("variant", "AllTraffic"),
            ("inference_component", "_other"),
        ]),
        3,
        "{invocations:#?}"
    );
    assert!(
        !invocations
            .iter()
            .flat_map(|(labels, _)| labels)
            .any(|(_, value)| value.starts_with("nope")),
        "{invocations:#?}"
    );
    // The target model is no label.
    assert_eq!(
        count(&[
            ("endpoint", "mme"),
            ("region", "us-east-1"),
            ("variant", "AllTraffic")
        ]),
        1,
        "{invocations:#?}"
    );
}

/// The EMF sink guards its `InferenceComponent` dimension as the metrics guard
/// their label: a name the endpoint does not list is `_other`. Each distinct
/// value is 5 CloudWatch custom metrics (CostUSD, LatencyMs, Invocations, Errors,
/// Unpriced) at $0.30 per metric-month: the three made-up names were 3 × 5 = 15
/// metrics ($4.50 a month; 1,000 such names 5,000 metrics, $1,500), one `_other`
/// value is 5 ($1.50), however many names are made up.
#[tokio::test]
async fn emf_documents_name_a_component_its_endpoint_does_not_list_other() {
    let buffer = crate::support::MemoryWriter::default();
    let emf = sagemeter::sink::EmfSink::builder()
        .writer("buffer", buffer.clone())
        .build()
        .unwrap();
    let fake = shared_endpoint().await;
    let pricelist = price_list().await;
    let client = Client::builder(&fake.sdk_config().await)
        .pricing_config(&pricelist.sdk_config("us-east-1"))
        .sink(emf.clone())
        .build()
        .unwrap();
    // A component the endpoint lists keeps its name.
    call(&client, Some("small"), None).await;
    // Names the endpoint does not list (the request's own, answered all the same).
    for made_up in ["nope-1", "nope-2", "nope-3"] {
        let cost = call(&client, Some(made_up), None).await;
        // The receipt keeps the name the request gave.
        assert_eq!(cost.inference_component.as_deref(), Some(made_up));
    }
    emf.flush().await.unwrap();

    let text = buffer.text();
    let documents: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(documents.len(), 4, "{text}");
    assert_eq!(documents[0]["InferenceComponent"], "small");
    for document in &documents[1..] {
        assert_eq!(document["InferenceComponent"], "_other", "{document}");
    }
    assert!(!text.contains("nope"), "{text}");
}

/// Without DescribeEndpoint permission (or while describing fails) whether the
/// endpoint lists a component is not known: its components keep their names (at
/// most 100 per endpoint, as for a receipt given to the sink by hand), not all
/// `_other`.
#[tokio::test]
async fn metrics_label_components_by_name_when_the_endpoint_cannot_be_described() {
    use metrics_util::debugging::DebuggingRecorder;
    let recorder = DebuggingRecorder::new();
    let _guard = metrics::set_default_local_recorder(&recorder);
    let fake = shared_endpoint().await;
    *fake.state.describe_error.lock().unwrap() = Some("AccessDeniedException".into());
    let pricelist = price_list().await;
    let client = Client::builder(&fake.sdk_config().await)
        .pricing_config(&pricelist.sdk_config("us-east-1"))
        .build()
        .unwrap();
    for component in ["small", "large", "small"] {
        let cost = call(&client, Some(component), None).await;
        // The profile is an error indeed (the call's compute is unpriced for it).
        assert!(!cost.is_fully_priced(), "{cost:?}");
    }

    let invocations = crate::support::counter_values(&recorder, "sagemeter_invocations_total");
    let per_component = |name: &str| -> u64 {
        invocations
            .iter()
            .filter(|(labels, _)| {
                labels
                    .iter()
                    .any(|(k, v)| k == "inference_component" && v == name)
            })
            .map(|(_, n)| n)
            .sum()
    };
    assert_eq!(per_component("small"), 2, "{invocations:#?}");
    assert_eq!(per_component("large"), 1, "{invocations:#?}");
    assert_eq!(per_component("_other"), 0, "{invocations:#?}");
}
