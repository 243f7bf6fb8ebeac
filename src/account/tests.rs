//! The account view with mocked AWS answers: what no emulator answers here
//! (endpoints in every status, several pages of each API).

use super::*;
use crate::account::EndpointsView;
use crate::pricing::{PriceKey, PriceSource, Snapshot};
use aws_config::BehaviorVersion;
use aws_sdk_sagemaker::types::builders::ProductionVariantBuilder;
use aws_sdk_sagemaker::types::{
    EndpointStatus, EndpointSummary, ProductionVariant, ProductionVariantInstanceType,
    ProductionVariantSummary,
};
use aws_smithy_async::test_util::ManualTimeSource;
use aws_smithy_mocks::{MockResponseInterceptor, Rule, RuleMode, create_mock_http_client, mock};
use aws_types::region::Region;
use chrono::NaiveDate;
use rust_decimal::Decimal;
use std::time::{Duration, SystemTime};

/// A mock interceptor answering by `rules`, in any order (shared with the
/// property test).
pub(super) fn interceptor(rules: &[&Rule]) -> MockResponseInterceptor {
    let mut interceptor = MockResponseInterceptor::new().rule_mode(RuleMode::MatchAny);
    for rule in rules {
        interceptor = interceptor.with_rule(rule);
    }
    interceptor
}

macro_rules! mocked_client {
    ($krate:ident, $rules:expr) => {
        $krate::Client::from_conf(
            $krate::Config::builder()
                .behavior_version(BehaviorVersion::latest())
                .region(Region::from_static("us-east-1"))
                .credentials_provider($krate::config::Credentials::new(
                    "test", "test", None, None, "static",
                ))
                .http_client(create_mock_http_client())
                .interceptor(interceptor($rules))
                .build(),
        )
    };
}
pub(super) use mocked_client;

/// 2026-12-02T12:00:00Z.
fn noon() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_796_212_800)
}

fn account(sagemaker: &[&Rule], cloudwatch: &[&Rule], cost_explorer: &[&Rule]) -> Account {
    Account {
        region: "us-east-1".into(),
        sagemaker: mocked_client!(aws_sdk_sagemaker, sagemaker),
        cloudwatch: mocked_client!(aws_sdk_cloudwatch, cloudwatch),
        cost_explorer: mocked_client!(aws_sdk_costexplorer, cost_explorer),
        sts: mocked_client!(aws_sdk_sts, &[&caller_identity()]),
        prices: std::sync::Arc::new(Snapshot::bundled()),
        time: SharedTimeSource::new(ManualTimeSource::new(noon())),
    }
}

/// [`account`] whose STS answers by `sts` instead of [`caller_identity`].
fn account_with_sts(cost_explorer: &[&Rule], sts: &[&Rule]) -> Account {
    Account {
        sts: mocked_client!(aws_sdk_sts, sts),
        ..account(&[], &[], cost_explorer)
    }
}

/// The caller of every mocked account: account 123456789012.
fn caller_identity() -> Rule {
    mock!(aws_sdk_sts::Client::get_caller_identity).then_output(|| {
        aws_sdk_sts::operation::get_caller_identity::GetCallerIdentityOutput::builder()
            .account(CALLER)
            .arn(format!("arn:aws:iam::{CALLER}:user/tester"))
            .build()
    })
}

/// The account id of [`caller_identity`].
const CALLER: &str = "123456789012";

fn summary(name: &str, status: EndpointStatus) -> EndpointSummary {
    summary_at(name, status, 1_700_000_000, 1_700_000_000)
}

/// ListEndpoints' summary of `name`, created at `created` and last modified at
/// `modified` (seconds since the epoch).
fn summary_at(name: &str, status: EndpointStatus, created: i64, modified: i64) -> EndpointSummary {
    EndpointSummary::builder()
        .endpoint_name(name)
        .endpoint_arn(format!(
            "arn:aws:sagemaker:us-east-1:123456789012:endpoint/{name}"
        ))
        .endpoint_status(status)
        .creation_time(aws_smithy_types::DateTime::from_secs(created))
        .last_modified_time(aws_smithy_types::DateTime::from_secs(modified))
        .build()
}

/// The account's endpoints view over the last 24 hours.
async fn last_day(account: &Account) -> EndpointsView {
    account
        .endpoints(&EndpointsOptions::new(Window::hours(24)))
        .await
        .unwrap()
}

/// GetMetricData answering no datapoint.
fn no_metrics() -> Rule {
    mock!(aws_sdk_cloudwatch::Client::get_metric_data).then_output(|| {
        aws_sdk_cloudwatch::operation::get_metric_data::GetMetricDataOutput::builder().build()
    })
}

/// DescribeEndpoint and DescribeEndpointConfig of `name`: `count` × ml.m5.xlarge.
fn described(name: &'static str, status: EndpointStatus, count: i32) -> [Rule; 2] {
    described_with(name, status, count, None, None)
}

/// [`described`], with a volume of `volume_gb` per instance and a shadow variant
/// (`Shadow`) of `shadow` instances of ml.g5.xlarge.
fn described_with(
    name: &'static str,
    status: EndpointStatus,
    count: i32,
    volume_gb: Option<i32>,
    shadow: Option<i32>,
) -> [Rule; 2] {
    described_as(
        name,
        status,
        count,
        ProductionVariantInstanceType::MlM5Xlarge,
        shadow,
        move |variant| variant.set_volume_size_in_gb(volume_gb),
    )
}

/// DescribeEndpoint and DescribeEndpointConfig of `name`: `count` × `instance`
/// in its variant `AllTraffic`, which `more` sets more of in the config, and a
/// shadow variant (`Shadow`) of `shadow` instances of ml.g5.xlarge.
fn described_as(
    name: &'static str,
    status: EndpointStatus,
    count: i32,
    instance: ProductionVariantInstanceType,
    shadow: Option<i32>,
    more: impl Fn(ProductionVariantBuilder) -> ProductionVariantBuilder + Send + Sync + 'static,
) -> [Rule; 2] {
    use aws_sdk_sagemaker::operation::describe_endpoint::DescribeEndpointOutput;
    use aws_sdk_sagemaker::operation::describe_endpoint_config::DescribeEndpointConfigOutput;
    let endpoint = mock!(aws_sdk_sagemaker::Client::describe_endpoint)
        .match_requests(move |r| r.endpoint_name() == Some(name))
        .then_output(move || {
            DescribeEndpointOutput::builder()
                .endpoint_name(name)
                .endpoint_config_name(format!("{name}-config"))
                .endpoint_status(status.clone())
                .production_variants(
                    ProductionVariantSummary::builder()
                        .variant_name("AllTraffic")
                        .current_instance_count(count)
                        .build(),
                )
                .set_shadow_production_variants(shadow.map(|n| {
                    vec![
                        ProductionVariantSummary::builder()
                            .variant_name("Shadow")
                            .current_instance_count(n)
                            .build(),
                    ]
                }))
                .build()
        });
    let config = mock!(aws_sdk_sagemaker::Client::describe_endpoint_config)
        .match_requests(move |r| r.endpoint_config_name() == Some(&format!("{name}-config")))
        .then_output(move || {
            DescribeEndpointConfigOutput::builder()
                .endpoint_config_name(format!("{name}-config"))
                .production_variants(
                    more(
                        ProductionVariant::builder()
                            .variant_name("AllTraffic")
                            .model_name(format!("{name}-model"))
                            .instance_type(instance.clone())
                            .initial_instance_count(count),
                    )
                    .build(),
                )
                .set_shadow_production_variants(shadow.map(|n| {
                    vec![
                        ProductionVariant::builder()
                            .variant_name("Shadow")
                            .model_name(format!("{name}-challenger"))
                            .instance_type(ProductionVariantInstanceType::MlG5Xlarge)
                            .initial_instance_count(n)
                            .build(),
                    ]
                }))
                .build()
        });
    [endpoint, config]
}

#[tokio::test]
async fn every_page_and_every_status_is_listed_and_only_billed_statuses_burn() {
    use aws_sdk_cloudwatch::operation::get_metric_data::GetMetricDataOutput;
    use aws_sdk_cloudwatch::types::MetricDataResult;
    use aws_sdk_sagemaker::operation::list_endpoints::ListEndpointsOutput;

    let first_page = mock!(aws_sdk_sagemaker::Client::list_endpoints)
        .match_requests(|r| r.next_token().is_none())
        .then_output(|| {
            ListEndpointsOutput::builder()
                .endpoints(summary("serving", EndpointStatus::InService))
                .next_token("page-2")
                .build()
        });
    let second_page = mock!(aws_sdk_sagemaker::Client::list_endpoints)
        .match_requests(|r| r.next_token() == Some("page-2"))
        .then_output(|| {
            ListEndpointsOutput::builder()
                .endpoints(summary("broken", EndpointStatus::Failed))
                .endpoints(summary("starting", EndpointStatus::Creating))
                .build()
        });
    let [a, b] = described("serving", EndpointStatus::InService, 2);
    let [c, d] = described("broken", EndpointStatus::Failed, 1);
    let [e, f] = described("starting", EndpointStatus::Creating, 3);
    // Two pages of datapoints for the first variant (`i0`): 10 + 5, then 5 more.
    let metrics_first = mock!(aws_sdk_cloudwatch::Client::get_metric_data)
        .match_requests(|r| r.next_token().is_none())
        .then_output(|| {
            GetMetricDataOutput::builder()
                .metric_data_results(
                    MetricDataResult::builder()
                        .id("i0")
                        .values(10.0)
                        .values(5.0)
                        .build(),
                )
                .next_token("more")
                .build()
        });
    let metrics_second = mock!(aws_sdk_cloudwatch::Client::get_metric_data)
        .match_requests(|r| r.next_token() == Some("more"))
        .then_output(|| {
            GetMetricDataOutput::builder()
                .metric_data_results(MetricDataResult::builder().id("i0").values(5.0).build())
                // Ids sagemeter never asked for (an emulator's, a proxy's) are
                // skipped, the empty one and one split mid-character included.
                .metric_data_results(MetricDataResult::builder().id("").values(99.0).build())
                .metric_data_results(MetricDataResult::builder().id("é0").values(99.0).build())
                .build()
        });
    let account = account(
        &[&first_page, &second_page, &a, &b, &c, &d, &e, &f],
        &[&metrics_first, &metrics_second],
        &[],
    );
    let view = last_day(&account).await;
    assert_eq!(first_page.num_calls() + second_page.num_calls(), 2);
    assert_eq!(metrics_first.num_calls() + metrics_second.num_calls(), 2);
    assert_eq!(view.totals.endpoints, 3);
    let row = |name: &str| view.rows.iter().find(|r| r.endpoint == name).unwrap();

    // In service: 2 × $0.23/h; 20 calls over the window ($11.04): $552 per 1,000.
    let serving = row("serving");
    assert_eq!(serving.usd_per_hour, Some(Decimal::new(46, 2)));
    assert_eq!(serving.invocations, Some(20));
    assert_eq!(serving.usd_per_1000_invocations, Some(Decimal::new(552, 0)));
    // Its config states no volume size: the burn says it leaves the storage out.
    assert_eq!(
        serving.notes,
        [
            "the ML storage is not in the burn: the endpoint config states no VolumeSizeInGB \
          (SageMaker attaches a volume of the instance type's default size, none on types \
          with NVMe instance storage)"
        ]
    );
    // Failed and Creating: listed with their status, not billed, not idle.
    for (name, status) in [("broken", "Failed"), ("starting", "Creating")] {
        let r = row(name);
        assert_eq!(r.status, status);
        assert_eq!(r.usd_per_hour, Some(Decimal::ZERO));
        assert!(r.flags.is_empty(), "{r:?}");
        assert_eq!(r.notes, [format!("not billed while {status}")]);
    }
    assert_eq!(view.totals.usd_per_hour, Decimal::new(46, 2));
    assert_eq!(view.rows[0].endpoint, "serving", "by burn");
}

/// A query's results come in parts (CloudWatch pages them under the same Id):
/// parts that add up past what a count holds saturate, never wrap to a small
/// count (nor panic).
#[tokio::test]
async fn invocation_counts_past_what_a_count_holds_saturate() {
    use aws_sdk_cloudwatch::operation::get_metric_data::GetMetricDataOutput;
    use aws_sdk_cloudwatch::types::MetricDataResult;
    let list = listed_alone("serving");
    let [a, b] = described("serving", EndpointStatus::InService, 2);
    let metrics = mock!(aws_sdk_cloudwatch::Client::get_metric_data).then_output(|| {
        let part = || MetricDataResult::builder().id("i0").values(1e19).build();
        GetMetricDataOutput::builder()
            .metric_data_results(part())
            .metric_data_results(part())
            .build()
    });
    let view = last_day(&account(&[&list, &a, &b], &[&metrics], &[])).await;
    // 1e19 + 1e19 is more than 2⁶⁴ − 1 = 18,446,744,073,709,551,615.
    assert_eq!(view.rows[0].invocations, Some(u64::MAX));
}

/// CloudWatch answers a query it could not serve with a status and no values
/// (`InternalError`: AWS's advice is to ask again; `Forbidden`): no values is
/// then not no calls, and the endpoint is not idle.
#[tokio::test]
async fn a_query_cloudwatch_did_not_answer_is_unknown_invocations_not_an_idle_endpoint() {
    let list = listed_alone("serving");
    let [a, b] = described("serving", EndpointStatus::InService, 2);
    let metrics = variant_0_invocations_unanswered();
    let view = last_day(&account(&[&list, &a, &b], &[&metrics], &[])).await;
    let row = &view.rows[0];
    // Still 2 × $0.23/h burning; whether it was called is not known.
    assert_eq!(row.usd_per_hour, Some(Decimal::new(46, 2)));
    assert_eq!(row.invocations, None);
    assert!(row.flags.is_empty(), "{:?}", row.flags);
    assert_eq!(view.totals.idle_usd_per_hour, Decimal::ZERO);
    assert_eq!(
        view.warnings,
        [
            "invocations of serving/AllTraffic unknown: CloudWatch answered InternalError: \
          Internal service error"
        ]
    );
}

#[tokio::test]
async fn every_page_of_the_bill_is_read_and_estimated_days_are_not_settled() {
    use aws_sdk_costexplorer::operation::get_cost_and_usage::GetCostAndUsageOutput;
    use aws_sdk_costexplorer::types::{DateInterval, Group, MetricValue, ResultByTime};

    let day = |d: &str, estimated: bool, usd: &str, hours: &str| {
        let metric =
            |amount: &str, unit: &str| MetricValue::builder().amount(amount).unit(unit).build();
        ResultByTime::builder()
            .time_period(
                DateInterval::builder()
                    .start(d)
                    .end(
                        NaiveDate::parse_from_str(d, "%Y-%m-%d")
                            .unwrap()
                            .succ_opt()
                            .unwrap()
                            .to_string(),
                    )
                    .build()
                    .unwrap(),
            )
            .groups(
                Group::builder()
                    .keys("USE1-Host:ml.m5.xlarge")
                    .metrics("AmortizedCost", metric(usd, "USD"))
                    .metrics("UsageQuantity", metric(hours, "Hrs"))
                    .build(),
            )
            .estimated(estimated)
            .build()
    };
    let first = mock!(aws_sdk_costexplorer::Client::get_cost_and_usage)
        .match_requests(|r| r.next_page_token().is_none())
        .then_output(move || {
            GetCostAndUsageOutput::builder()
                .results_by_time(day("2026-11-29", false, "11.04", "48"))
                .next_page_token("next")
                .build()
        });
    let second = mock!(aws_sdk_costexplorer::Client::get_cost_and_usage)
        .match_requests(|r| r.next_page_token() == Some("next"))
        .then_output(move || {
            GetCostAndUsageOutput::builder()
                // 48 h at $0.1656: a 28 % savings plan.
                .results_by_time(day("2026-11-30", true, "7.9488", "48"))
                .build()
        });
    let account = account(&[], &[], &[&first, &second]);
    let since = NaiveDate::from_ymd_opt(2026, 11, 29).unwrap();
    let options = ReconcileOptions::new(since, since + chrono::Days::new(2));
    let r = account
        .reconcile(&Metered::new("us-east-1"), &options)
        .await
        .unwrap();
    assert_eq!(first.num_calls() + second.num_calls(), 2);
    assert_eq!(r.days.len(), 2);
    // Nothing metered: the whole settled day is outside sagemeter.
    assert_eq!(r.days[0].parts.outside_usd, Decimal::new(1104, 2));
    assert_eq!(r.days[0].verdict, Verdict::Explained);
    // 48 h × $0.23 = $11.04 on demand; billed $7.9488: a discount of $3.0912,
    // an effective rate 0.72 of on-demand; the day is estimated.
    assert_eq!(r.days[1].parts.discount_usd, Decimal::new(-30912, 4));
    assert_eq!(r.rows[1].effective_rate_ratio, Some(Decimal::new(72, 2)));
    assert_eq!(r.days[1].verdict, Verdict::NotSettled);
}

/// Prices ml.g5.12xlarge at $7.09/h with the Price List's resources (48 vCPUs,
/// 192 GiB, 4 GPUs), as a live rate carries them.
#[derive(Debug)]
struct G5Prices;

impl PriceSource for G5Prices {
    fn price<'a>(
        &'a self,
        key: &'a PriceKey,
    ) -> crate::pricing::BoxFuture<'a, Result<crate::pricing::Rate, crate::pricing::PriceError>>
    {
        Box::pin(async move {
            match key {
                PriceKey::Hosting { instance_type, .. } if instance_type == "ml.g5.12xlarge" => {
                    Ok(crate::pricing::Rate::new(
                        key.clone(),
                        Decimal::new(709, 2),
                        crate::pricing::Provenance::new(crate::pricing::PriceOrigin::Live),
                    )
                    .with_instance(crate::pricing::InstanceResources::new(48, 192, 4)))
                }
                _ => Err(crate::pricing::PriceError::NotFound { key: key.clone() }),
            }
        })
    }
}

/// The endpoints view of `shared`: `instances` × ml.g5.12xlarge ($7.09/h, 4 GPUs)
/// hosting `small` (1 copy of 1 GPU), `large` (1 copy of `large_gpus` GPUs) and
/// `small-lora` (an adapter of small); only large was called (100 times).
async fn components_view(instances: i32, large_gpus: f32) -> EndpointsView {
    components_view_with(instances, large_gpus, 1, Some(&[])).await
}

/// [`components_view`] with `small` at `small_copies` copies now, and CloudWatch
/// answering `more` results besides the variant's and large's 100 calls: by id,
/// `i2`/`l2` for small, `i3`/`l3` for small-lora (ModelLatency in µs). `None`:
/// CloudWatch refuses ([`metrics_refused`]).
async fn components_view_with(
    instances: i32,
    large_gpus: f32,
    small_copies: i32,
    more: Option<&'static [(&'static str, f64)]>,
) -> EndpointsView {
    use aws_sdk_cloudwatch::operation::get_metric_data::GetMetricDataOutput;
    use aws_sdk_cloudwatch::types::MetricDataResult;
    use aws_sdk_sagemaker::operation::describe_endpoint::DescribeEndpointOutput;
    use aws_sdk_sagemaker::operation::describe_endpoint_config::DescribeEndpointConfigOutput;
    use aws_sdk_sagemaker::operation::describe_inference_component::DescribeInferenceComponentOutput;
    use aws_sdk_sagemaker::operation::list_inference_components::ListInferenceComponentsOutput;
    use aws_sdk_sagemaker::types::{
        InferenceComponentComputeResourceRequirements, InferenceComponentRuntimeConfigSummary,
        InferenceComponentSpecificationSummary, InferenceComponentSummary,
    };

    let list = listed_alone("shared");
    let endpoint = mock!(aws_sdk_sagemaker::Client::describe_endpoint).then_output(move || {
        DescribeEndpointOutput::builder()
            .endpoint_name("shared")
            .endpoint_config_name("shared-config")
            .endpoint_status(EndpointStatus::InService)
            .production_variants(
                ProductionVariantSummary::builder()
                    .variant_name("AllTraffic")
                    .current_instance_count(instances)
                    .build(),
            )
            .build()
    });
    // No ModelName: the variant hosts inference components.
    let config =
        mock!(aws_sdk_sagemaker::Client::describe_endpoint_config).then_output(move || {
            DescribeEndpointConfigOutput::builder()
                .endpoint_config_name("shared-config")
                .production_variants(
                    ProductionVariant::builder()
                        .variant_name("AllTraffic")
                        .instance_type(ProductionVariantInstanceType::MlG512Xlarge)
                        .initial_instance_count(instances)
                        .build(),
                )
                .build()
        });
    let components = mock!(aws_sdk_sagemaker::Client::list_inference_components)
        .match_requests(|r| r.endpoint_name_equals() == Some("shared"))
        .then_output(|| {
            let summary = |name: &str| {
                InferenceComponentSummary::builder()
                    .inference_component_name(name)
                    .inference_component_arn(format!("arn:ic/{name}"))
                    .endpoint_name("shared")
                    .endpoint_arn("arn:endpoint/shared")
                    .variant_name("AllTraffic")
                    .creation_time(aws_smithy_types::DateTime::from_secs(1_700_000_000))
                    .last_modified_time(aws_smithy_types::DateTime::from_secs(1_700_000_000))
                    .build()
            };
            ListInferenceComponentsOutput::builder()
                .inference_components(summary("small"))
                .inference_components(summary("large"))
                .inference_components(summary("small-lora"))
                .build()
        });
    // A LoRA adapter of `small`, described as AWS describes one: no variant, no
    // compute requirements, no copies.
    let adapter = mock!(aws_sdk_sagemaker::Client::describe_inference_component)
        .match_requests(|r| r.inference_component_name() == Some("small-lora"))
        .then_output(|| {
            DescribeInferenceComponentOutput::builder()
                .inference_component_name("small-lora")
                .inference_component_arn("arn:ic/small-lora")
                .endpoint_name("shared")
                .endpoint_arn("arn:endpoint/shared")
                .specification(
                    InferenceComponentSpecificationSummary::builder()
                        .base_inference_component_name("small")
                        .build(),
                )
                .creation_time(aws_smithy_types::DateTime::from_secs(1_700_000_000))
                .last_modified_time(aws_smithy_types::DateTime::from_secs(1_700_000_000))
                .build()
        });
    let describe = move |name: &'static str, gpus: f32, copies: i32| {
        mock!(aws_sdk_sagemaker::Client::describe_inference_component)
            .match_requests(move |r| r.inference_component_name() == Some(name))
            .then_output(move || {
                DescribeInferenceComponentOutput::builder()
                    .inference_component_name(name)
                    .inference_component_arn(format!("arn:ic/{name}"))
                    .endpoint_name("shared")
                    .endpoint_arn("arn:endpoint/shared")
                    .variant_name("AllTraffic")
                    .specification(
                        InferenceComponentSpecificationSummary::builder()
                            .compute_resource_requirements(
                                InferenceComponentComputeResourceRequirements::builder()
                                    .number_of_accelerator_devices_required(gpus)
                                    .min_memory_required_in_mb(8192)
                                    .build(),
                            )
                            .build(),
                    )
                    .runtime_config(
                        InferenceComponentRuntimeConfigSummary::builder()
                            .current_copy_count(copies)
                            .desired_copy_count(copies)
                            .build(),
                    )
                    .creation_time(aws_smithy_types::DateTime::from_secs(1_700_000_000))
                    .last_modified_time(aws_smithy_types::DateTime::from_secs(1_700_000_000))
                    .build()
            })
    };
    let small = describe("small", 1.0, small_copies);
    let large = describe("large", large_gpus, 1);
    let account = |cloudwatch: &Rule| {
        let mut account = account(
            &[
                &list,
                &endpoint,
                &config,
                &components,
                &small,
                &large,
                &adapter,
            ],
            &[cloudwatch],
            &[],
        );
        account.prices = std::sync::Arc::new(G5Prices);
        account
    };
    let Some(more) = more else {
        return last_day(&account(&metrics_refused())).await;
    };
    // Queries in row order: the variant (0), then its components by name: large (1),
    // small (2). A component's metrics carry only its InferenceComponentName.
    let metrics = mock!(aws_sdk_cloudwatch::Client::get_metric_data)
        .match_requests(|r| {
            r.metric_data_queries().iter().any(|q| {
                q.id() == Some("i1")
                    && q.metric_stat().and_then(|s| s.metric()).is_some_and(|m| {
                        m.dimensions().len() == 1
                            && m.dimensions()[0].name() == Some("InferenceComponentName")
                            && m.dimensions()[0].value() == Some("large")
                    })
            })
        })
        .then_output(move || {
            let mut out = GetMetricDataOutput::builder()
                .metric_data_results(MetricDataResult::builder().id("i0").values(100.0).build())
                .metric_data_results(MetricDataResult::builder().id("i1").values(100.0).build());
            for (id, value) in more {
                out = out.metric_data_results(
                    MetricDataResult::builder().id(*id).values(*value).build(),
                );
            }
            out.build()
        });
    let view = last_day(&account(&metrics)).await;
    assert_eq!(metrics.num_calls(), 1);
    view
}

/// GetMetricData refused (the caller may not `cloudwatch:GetMetricData`).
fn metrics_refused() -> Rule {
    use aws_sdk_cloudwatch::operation::get_metric_data::GetMetricDataError;
    mock!(aws_sdk_cloudwatch::Client::get_metric_data).then_error(|| {
        GetMetricDataError::generic(
            aws_smithy_types::error::ErrorMetadata::builder()
                .code("AccessDenied")
                .message("not authorized to perform: cloudwatch:GetMetricData")
                .build(),
        )
    })
}

#[tokio::test]
async fn each_inference_component_has_its_reserved_share_of_the_variant_burn() {
    let view = components_view(2, 3.0).await;

    let names: Vec<Option<&str>> = view
        .rows
        .iter()
        .map(|r| r.inference_component.as_deref())
        .collect();
    assert_eq!(
        names,
        [None, Some("large"), Some("small"), Some("small-lora")]
    );
    // The variant: 2 × $7.09 = $14.18/h; 1 + 3 of its 8 GPUs are reserved, half free
    // (the adapter reserves none).
    let variant = &view.rows[0];
    assert_eq!(variant.usd_per_hour, Some(Decimal::new(1418, 2)));
    assert_eq!(variant.unreserved_share, Some(Decimal::new(5, 1)));
    assert!(
        variant.notes.contains(
            &"inference components reserve 50% of the instances; 7.09 USD/hour is reserved by none"
                .to_owned()
        ),
        "{:?}",
        variant.notes
    );
    // large: 3 of 4 GPUs per copy, 1 copy on 2 instances = 0.375 → $5.3175/h.
    let large_row = &view.rows[1];
    assert_eq!(large_row.reserved_share, Some(Decimal::new(375, 3)));
    assert_eq!(large_row.usd_per_hour, Some(Decimal::new(53175, 4)));
    assert_eq!(large_row.invocations, Some(100));
    assert!(large_row.flags.is_empty(), "{:?}", large_row.flags);
    // small: 0.125 → $1.7725/h, no invocations: idle.
    let small_row = &view.rows[2];
    assert_eq!(small_row.reserved_share, Some(Decimal::new(125, 3)));
    assert_eq!(small_row.usd_per_hour, Some(Decimal::new(17725, 4)));
    assert_eq!(small_row.flags, [Flag::Idle]);
    // The adapter runs on small's copy: nothing reserved, nothing of its own.
    let adapter_row = &view.rows[3];
    assert_eq!(adapter_row.reserved_share, Some(Decimal::ZERO));
    assert_eq!(adapter_row.usd_per_hour, Some(Decimal::ZERO));
    assert!(
        !adapter_row.flags.contains(&Flag::Unpriced),
        "{:?}",
        adapter_row.flags
    );
    assert!(
        adapter_row
            .notes
            .iter()
            .any(|n| n.contains("an adapter of `small`")),
        "{:?}",
        adapter_row.notes
    );
    // The totals count the variant once.
    assert_eq!(view.totals.usd_per_hour, Decimal::new(1418, 2));
    assert_eq!(view.totals.idle_usd_per_hour, Decimal::ZERO);
}

#[tokio::test]
async fn components_reserving_more_than_the_instances_are_scaled_as_their_receipts_are() {
    // One ml.g5.12xlarge ($7.09/h, 4 GPUs): large reserves all 4, small 1 more, 1.25
    // instances' worth on one. Each share is scaled by 1 ÷ 1.25, as the receipts'
    // are: large 0.8 → $5.672/h, small 0.2 → $1.418/h; together the instance's
    // $7.09/h, not 1.25 times it, and nothing unreserved.
    let view = components_view(1, 4.0).await;
    let (variant, large, small) = (&view.rows[0], &view.rows[1], &view.rows[2]);
    assert_eq!(large.reserved_share, Some(Decimal::new(8, 1)));
    assert_eq!(large.usd_per_hour, Some(Decimal::new(5672, 3)));
    assert_eq!(small.reserved_share, Some(Decimal::new(2, 1)));
    assert_eq!(small.usd_per_hour, Some(Decimal::new(1418, 3)));
    assert_eq!(variant.usd_per_hour, Some(Decimal::new(709, 2)));
    assert_eq!(variant.unreserved_share, Some(Decimal::ZERO));
    assert!(
        large.notes.iter().any(|n| n.contains("scaled down")),
        "{:?}",
        large.notes
    );
}

/// The row of component `name` in `view`.
fn component_row<'a>(view: &'a EndpointsView, name: &str) -> &'a EndpointRow {
    view.rows
        .iter()
        .find(|r| r.inference_component.as_deref() == Some(name))
        .unwrap_or_else(|| panic!("no row of {name}"))
}

/// A component scaled in to 0 copies on a variant whose instances stay up (for
/// another component), after calls in the window: it ran on copies since scaled
/// in, which divided the instances' cost while they stood.
#[tokio::test]
async fn a_component_at_zero_copies_after_calls_in_the_window_has_no_window_cost_of_zero() {
    // 2 × ml.g5.12xlarge ($7.09/h, 4 GPUs each): large holds 1 copy of 3 GPUs,
    // small 0 copies now (MinCopyCount 0), yet it served 500 calls in the 24 h
    // window. Now it reserves 0 × (1 ÷ 4) ÷ 2 = 0 of the instances: $0/h. Had it
    // held its copy for 6 h of the window, that copy reserved 1 ÷ 4 ÷ 2 = 0.125 of
    // the $14.18/h: 0.125 × 14.18 × 6 = $10.635 of the instance-hours AWS billed.
    // How long it held one is not known from the deployment now, so its window
    // cost is not $0 (nor its cost per 1,000 calls), but unknown.
    let view = components_view_with(2, 3.0, 0, Some(&[("i2", 500.0)])).await;
    let small = component_row(&view, "small");
    assert_eq!(small.copies, Some(0));
    assert_eq!(small.reserved_share, Some(Decimal::ZERO));
    assert_eq!(small.usd_per_hour, Some(Decimal::ZERO));
    assert_eq!(small.invocations, Some(500));
    assert_eq!(small.window_cost_usd, None, "{small:?}");
    assert_eq!(small.usd_per_1000_invocations, None, "{small:?}");
    assert!(small.flags.is_empty(), "{:?}", small.flags);
    let note = small
        .notes
        .iter()
        .find(|n| n.contains("scaled to zero now"))
        .unwrap_or_else(|| panic!("no note: {:?}", small.notes));
    assert!(note.contains("(0 copies)"), "{note}");
    assert!(note.contains("served 500 calls"), "{note}");
    // The variant's window is its instances': 2 × $7.09 × 24 h = $340.32, known.
    assert_eq!(view.rows[0].window_cost_usd, Some(Decimal::new(34032, 2)));
    assert_eq!(view.totals.window_cost_usd, Decimal::new(34032, 2));
    assert_eq!(view.totals.window_unpriced, 0);
}

/// An adapter has no copies of its own: its calls run on its base's copies,
/// shared with the base's own calls, and it burns nothing. No utilisation over
/// the variant's instances, and no `underused` on its $0 row.
#[tokio::test]
async fn an_adapter_row_has_no_utilisation_underused_flag_nor_price_per_call() {
    // 2 × ml.g5.12xlarge; small-lora (an adapter of small, 1 copy) served 100 calls
    // with 14,400 s (1.44e10 µs) of ModelLatency in the 24 h window. Over the
    // variant's instances that would read 14,400 ÷ (2 × 86,400) = 8.3 %, below the
    // default 10 %: `underused`. But it runs on none of those instances as its
    // own, nor on small's copy alone (small's calls share it).
    // large, with copies of its own, keeps its utilisation over them: 12,960 s
    // (1.296e10 µs) of ModelLatency over 1 copy × 86,400 s = 15 %.
    let view = components_view_with(
        2,
        3.0,
        1,
        Some(&[("l1", 1.296e10), ("i3", 100.0), ("l3", 1.44e10)]),
    )
    .await;
    let adapter = component_row(&view, "small-lora");
    assert_eq!(adapter.copies, None);
    assert_eq!(adapter.invocations, Some(100));
    // Its calls' cost is in small's row: no $0 per 1,000 calls beside 100 calls.
    assert_eq!(adapter.usd_per_1000_invocations, None, "{adapter:?}");
    assert!(
        adapter.notes[0].ends_with("(its calls' cost is in that row)"),
        "{:?}",
        adapter.notes
    );
    assert_eq!(adapter.utilisation, None, "{adapter:?}");
    assert!(
        !adapter.flags.contains(&Flag::Underused),
        "{:?}",
        adapter.flags
    );
    let large = component_row(&view, "large");
    assert_eq!(large.utilisation, Some(Decimal::new(15, 2)));
    assert!(large.flags.is_empty(), "{:?}", large.flags);
}

#[tokio::test]
async fn a_torn_last_line_of_a_ledger_is_named_in_the_reconciliations_notes() {
    use aws_sdk_costexplorer::operation::get_cost_and_usage::GetCostAndUsageOutput;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("calls.jsonl");
    let receipt = serde_json::json!({
        "call_id": "a", "at": "2026-11-29T10:00:00Z", "endpoint": "rt",
        "variant": "AllTraffic",
        "billing": {"kind": "instance", "instance_type": "ml.m5.xlarge", "instance_count": 1},
        "allocation": "processor_sharing",
        "usage": {"operation": "InvokeEndpoint", "latency_us": 1000, "bytes_in": 0,
                  "bytes_out": 0, "variant": "AllTraffic", "outcome": "ok"},
        "lines": [], "cost_usd": "0", "currency": "USD", "region": "us-east-1",
        "running_client_usd": "0", "running_endpoint_usd": "0"
    });
    // One whole receipt, then the 16 bytes `{"call_id":"b","` of one a killed
    // writer left unfinished.
    std::fs::write(&path, format!("{receipt}\n{{\"call_id\":\"b\",\"")).unwrap();
    let mut metered = Metered::new("us-east-1");
    metered.read_ledger(&path).unwrap();
    assert_eq!(metered.receipts(), 1);

    let bill = mock!(aws_sdk_costexplorer::Client::get_cost_and_usage)
        .then_output(|| GetCostAndUsageOutput::builder().build());
    let r = reconcile_nov_29(&metered, &bill).await.unwrap();
    let expected = format!(
        "skipped a torn last line of {} (line 2, 16 bytes: an interrupted write); a receipt \
         it held is not compared",
        path.display()
    );
    assert!(r.notes.contains(&expected), "{:#?}", r.notes);
}

#[tokio::test]
async fn a_billed_class_without_an_on_demand_rate_is_unexplained_and_named() {
    // $500 for 48 h of an instance type no price source knows (the bundled
    // snapshot has no ml.zz9.large), and no receipts: whether it is usage outside
    // sagemeter at $10.42/h or a discount is not known, so none of it is named.
    let bill = billed_days(&[("2026-11-29", false, "USE1-Host:ml.zz9.large", "500", "48")]);
    let r = reconcile_nov_29(&Metered::new("us-east-1"), &bill)
        .await
        .unwrap();
    let day = &r.days[0];
    assert_eq!(day.parts.unexplained_usd, Decimal::from(500));
    assert_eq!(day.parts.outside_usd, Decimal::ZERO);
    assert_eq!(day.parts.discount_usd, Decimal::ZERO);
    assert_eq!(day.verdict, Verdict::Differs);
    assert!(
        r.notes
            .iter()
            .any(|n| n.starts_with("no on-demand rate for Host:ml.zz9.large in us-east-1")),
        "{:#?}",
        r.notes
    );
}

/// A standing charge (ML storage) is explained without an on-demand rate (billed
/// less metered is its standing part): without one, the note says what it does
/// cost, the effective rate ratio, and not that the rest is unexplained.
#[tokio::test]
async fn a_standing_class_without_an_on_demand_rate_is_not_called_unexplained() {
    // 2 GB of gp2 ML storage all month: 2 GB-Mo × $0.14 = $0.28 on the day's
    // bill, no receipts, and a price source that knows no price at all.
    let bill = billed_days(&[(
        "2026-11-29",
        false,
        "USE1-Host:VolumeUsage.gp2",
        "0.28",
        "2",
    )]);
    let since = NaiveDate::from_ymd_opt(2026, 11, 29).unwrap();
    let options = ReconcileOptions::new(since, since + chrono::Days::new(1));
    let account = Account {
        prices: std::sync::Arc::new(OnlyThese(vec![])),
        ..account(&[], &[], &[&bill])
    };
    let r = account
        .reconcile(&Metered::new("us-east-1"), &options)
        .await
        .unwrap();
    let storage = row(&r, "Host:VolumeUsage");
    // Standing: B − M = 0.28 − 0 = $0.28, none of it unexplained.
    assert_eq!(storage.parts.standing_usd, Decimal::new(28, 2));
    assert_eq!(storage.parts.unexplained_usd, Decimal::ZERO);
    assert_eq!(storage.effective_rate_ratio, None);
    let note = r
        .notes
        .iter()
        .find(|n| n.starts_with("no on-demand rate for Host:VolumeUsage in us-east-1"))
        .unwrap_or_else(|| panic!("{:#?}", r.notes));
    assert!(!note.contains("unexplained"), "{note}");
    assert!(note.contains("no effective rate ratio"), "{note}");
}

/// A provisioned-concurrency row adds two usage types billed at two rates (the
/// standing `Mem-` seconds and the inference `Usage-` seconds): its billed
/// quantity at one receipt's rate is no on-demand value, and its ratio is none.
#[tokio::test]
async fn a_provisioned_concurrency_row_has_no_effective_rate_ratio() {
    use aws_sdk_costexplorer::operation::get_cost_and_usage::GetCostAndUsageOutput;
    use aws_sdk_costexplorer::types::{DateInterval, Group, MetricValue, ResultByTime};
    // 2 GB, provisioned concurrency 1, all day, billed on demand: the standing
    // seconds, 86,400 s × $0.00001 = $0.864, and the inference seconds, 1,000 s
    // × $0.0000233 = $0.0233 (which usage type carries which, public sources
    // disagree). Summed: B = $0.8873, Q = 87,400 s; at on-demand rates the ratio
    // is 1, which no single rate × Q gives.
    let bill = mock!(aws_sdk_costexplorer::Client::get_cost_and_usage).then_output(|| {
        let metric =
            |amount: &str, unit: &str| MetricValue::builder().amount(amount).unit(unit).build();
        let group = |usage_type: &str, usd: &str, seconds: &str| {
            Group::builder()
                .keys(usage_type)
                .metrics("AmortizedCost", metric(usd, "USD"))
                .metrics("UsageQuantity", metric(seconds, "Second"))
                .build()
        };
        GetCostAndUsageOutput::builder()
            .results_by_time(
                ResultByTime::builder()
                    .time_period(
                        DateInterval::builder()
                            .start("2026-11-29")
                            .end("2026-11-30")
                            .build()
                            .unwrap(),
                    )
                    .estimated(false)
                    .groups(group(
                        "USE1-ProvisionedConcurrency:Usage-2GB",
                        "0.864",
                        "86400",
                    ))
                    .groups(group(
                        "USE1-ProvisionedConcurrency:Mem-2GB",
                        "0.0233",
                        "1000",
                    ))
                    .build(),
            )
            .build()
    });
    // One call of 1 s served by the provisioned concurrency, at its inference
    // rate, $0.0000233 a second.
    let call: crate::billing::Cost = serde_json::from_value(serde_json::json!({
        "call_id": "c", "at": "2026-11-29T10:00:00Z", "endpoint": "pc",
        "variant": "AllTraffic",
        "billing": {"kind": "serverless", "memory_mb": 2048, "provisioned_concurrency": 1},
        "allocation": "processor_sharing",
        "usage": {"operation": "InvokeEndpoint", "latency_us": 1000000,
                  "bytes_in": 0, "bytes_out": 0, "outcome": "ok"},
        "lines": [{"item": "compute", "quantity": "1", "unit": "seconds",
                   "price": {"status": "priced", "usd_per_unit": "0.0000233",
                             "cost_usd": "0.0000233", "provenance": {"source": "snapshot",
                             "sku": null, "effective_date": null, "fetched_at": null,
                             "note": null}}}],
        "cost_usd": "0.0000233", "currency": "USD",
        "running_client_usd": "0", "running_endpoint_usd": "0"
    }))
    .unwrap();
    let r = reconcile_nov_29(&ledger([call]), &bill).await.unwrap();
    let pc = row(&r, "ProvisionedConcurrency:2GB");
    assert_eq!(pc.billed_usd, Decimal::new(8873, 4));
    // Not 0.8873 ÷ (87,400 s × 0.0000233 = 2.03642) = 0.4357, which reads as
    // 56 % off a bill AWS charged on demand.
    assert_eq!(pc.effective_rate_ratio, None, "{pc:?}");
}

/// A price source's $0 (or a rate beyond any SageMaker price) is no on-demand
/// rate: what the bill holds beyond the receipts is unexplained and named, not a
/// discount of the whole bill (nor a figure too large to work out).
#[tokio::test]
async fn a_price_sources_zero_or_absurd_rate_is_no_on_demand_rate_not_a_discount() {
    // 2 × ml.m5.xlarge all day, no receipts: AWS bills 48 h × $0.23 (us-east-1
    // on demand) = $11.04. At the real rate all of it is outside sagemeter
    // (Q × r = 48 × 0.23 = 11.04, discount 11.04 − 11.04 = 0).
    for (usd_per_hour, what) in [
        // Q × r = 48 × 0 = $0: the whole $11.04 read as a discount, B − Q × r
        // = 11.04 − 0 = +$11.04, and the day "explained".
        (Decimal::ZERO, "0 USD per unit"),
        // Q × r = 48 × 10²⁵ = 4.8 × 10²⁶: B − Q × r needs 29 digits, and the
        // reconciliation was refused as of a corrupt ledger.
        (
            Decimal::from_i128_with_scale(10i128.pow(25), 0),
            "10000000000000000000000000 USD per unit",
        ),
    ] {
        let bill = billed_days(&[("2026-11-29", false, "USE1-Host:ml.m5.xlarge", "11.04", "48")]);
        let since = NaiveDate::from_ymd_opt(2026, 11, 29).unwrap();
        let options = ReconcileOptions::new(since, since + chrono::Days::new(1));
        let account = Account {
            prices: std::sync::Arc::new(OnlyThese(vec![(
                PriceKey::hosting("us-east-1", "ml.m5.xlarge"),
                usd_per_hour,
            )])),
            ..account(&[], &[], &[&bill])
        };
        let r = account
            .reconcile(&Metered::new("us-east-1"), &options)
            .await
            .unwrap_or_else(|err| panic!("{what}: {err}"));
        let day = &r.days[0];
        // No rate: outside usage and a discount cannot be told apart, so all
        // 11.04 − 0 metered = $11.04 is unexplained.
        assert_eq!(day.parts.discount_usd, Decimal::ZERO, "{what}");
        assert_eq!(day.parts.outside_usd, Decimal::ZERO, "{what}");
        assert_eq!(day.parts.unexplained_usd, Decimal::new(1104, 2), "{what}");
        assert_eq!(day.verdict, Verdict::Differs, "{what}");
        assert_eq!(r.rows[0].effective_rate_ratio, None, "{what}");
        let named = format!(
            "no on-demand rate for Host:ml.m5.xlarge in us-east-1: \
             {}the price source gave {what} for hosting ml.m5.xlarge in us-east-1",
            if usd_per_hour.is_zero() {
                ""
            } else {
                "malformed price document: "
            }
        );
        assert!(
            r.notes.iter().any(|n| n.starts_with(&named)),
            "{named}: {:#?}",
            r.notes
        );
    }
}

/// The bundled snapshot without its ML storage rates (as in a region it has none
/// for, with the Price List out of reach).
#[derive(Debug)]
struct NoStorageRates;

impl PriceSource for NoStorageRates {
    fn price<'a>(
        &'a self,
        key: &'a PriceKey,
    ) -> crate::pricing::BoxFuture<'a, Result<crate::pricing::Rate, crate::pricing::PriceError>>
    {
        Box::pin(async move {
            match key {
                PriceKey::Storage { .. } => {
                    Err(crate::pricing::PriceError::NotFound { key: key.clone() })
                }
                _ => Snapshot::bundled().price(key).await,
            }
        })
    }
}

/// AWS bills ML storage by the GB-month, prorated over the calendar month each
/// hour falls in; the burn per hour states it at an average 730-hour month. A
/// window across February's end is billed by the days of each month.
#[tokio::test]
async fn a_windows_ml_storage_is_prorated_over_the_calendar_months_it_spans() {
    let list = listed_alone("stored");
    // 2 × ml.m5.xlarge with 30 GB volumes; the bundled snapshot's us-east-1 rates,
    // $0.23/h and hosting ML storage (gp2) at $0.14 per GB-month.
    let [a, b] = described_with("stored", EndpointStatus::InService, 2, Some(30), None);
    let metrics = no_metrics();
    // 2027-03-01T12:00:00Z: the last 24 h are 12 in February 2027 (28 days, 672 h)
    // and 12 in March (31 days, 744 h).
    let march_first_noon = SystemTime::UNIX_EPOCH + Duration::from_secs(1_803_902_400);
    let account = Account {
        time: SharedTimeSource::new(ManualTimeSource::new(march_first_noon)),
        ..account(&[&list, &a, &b], &[&metrics], &[])
    };
    let view = last_day(&account).await;
    let row = &view.rows[0];
    // Per hour: 2 × 0.23 + 2 × 30 GB × 0.14 / 730 h = 0.46 + 8.4 / 730
    // = 0.471506849315068… → 0.471506849315.
    assert_eq!(row.usd_per_hour, Some("0.471506849315".parse().unwrap()));
    // The window: instances 0.46 × 24 h = 11.04; storage 8.4 × 12 / 672
    // + 8.4 × 12 / 744 = 0.15 + 0.135483870967741… = 0.285483870967741…; in all
    // 11.325483870967741… → 11.325483870968 (not 0.471506849315 × 24
    // = 11.31616438356).
    assert_eq!(
        row.window_cost_usd,
        Some("11.325483870968".parse().unwrap())
    );
    assert_eq!(
        view.totals.window_cost_usd,
        "11.325483870968".parse::<Decimal>().unwrap()
    );
}

#[tokio::test]
async fn shadow_variants_burn_and_a_missing_storage_rate_leaves_the_instances_priced() {
    let list = listed_alone("shadowed");
    // Production: 2 × ml.m5.xlarge ($0.23/h) with 30 GB volumes; shadow: 1 ×
    // ml.g5.xlarge ($1.408/h), both in the bundled snapshot.
    let [a, b] = described_with("shadowed", EndpointStatus::InService, 2, Some(30), Some(1));
    let metrics = no_metrics();
    let account = Account {
        prices: std::sync::Arc::new(NoStorageRates),
        ..account(&[&list, &a, &b], &[&metrics], &[])
    };
    let view = last_day(&account).await;
    let production = view
        .rows
        .iter()
        .find(|r| r.variant.as_deref() == Some("AllTraffic"))
        .unwrap();
    // 2 × 0.23 = 0.46 an hour; the volumes' storage, unpriced, is named.
    assert_eq!(production.usd_per_hour, Some(Decimal::new(46, 2)));
    assert!(!production.shadow);
    assert!(
        production
            .notes
            .iter()
            .any(|n| n.starts_with("the ML storage (30 GB × 2 instances) is not in the burn")),
        "{:?}",
        production.notes
    );
    // Its size is stated: no note says it is not.
    assert!(
        !production
            .notes
            .iter()
            .any(|n| n.contains("states no VolumeSizeInGB")),
        "{:?}",
        production.notes
    );
    let shadow = view
        .rows
        .iter()
        .find(|r| r.variant.as_deref() == Some("Shadow"))
        .expect("the shadow variant has a row");
    assert!(shadow.shadow);
    assert_eq!(shadow.instance_type.as_deref(), Some("ml.g5.xlarge"));
    assert_eq!(shadow.usd_per_hour, Some(Decimal::new(1408, 3)));
    // The endpoint burns 0.46 + 1.408 = 1.868 an hour.
    assert_eq!(view.totals.usd_per_hour, Decimal::new(1868, 3));
}

/// Rates for the keys given, and `NotFound` for every other key (as with the
/// Price List down and no snapshot row).
#[derive(Debug)]
struct OnlyThese(Vec<(PriceKey, Decimal)>);

impl PriceSource for OnlyThese {
    fn price<'a>(
        &'a self,
        key: &'a PriceKey,
    ) -> crate::pricing::BoxFuture<'a, Result<crate::pricing::Rate, crate::pricing::PriceError>>
    {
        Box::pin(async move {
            match self.0.iter().find(|(k, _)| k == key) {
                Some((_, usd)) => Ok(crate::pricing::Rate::new(
                    key.clone(),
                    *usd,
                    crate::pricing::Provenance::new(crate::pricing::PriceOrigin::Live),
                )),
                None => Err(crate::pricing::PriceError::NotFound { key: key.clone() }),
            }
        })
    }
}

/// ListEndpoints answering `name` alone, in service.
fn listed_alone(name: &'static str) -> Rule {
    use aws_sdk_sagemaker::operation::list_endpoints::ListEndpointsOutput;
    mock!(aws_sdk_sagemaker::Client::list_endpoints).then_output(move || {
        ListEndpointsOutput::builder()
            .endpoints(summary(name, EndpointStatus::InService))
            .build()
    })
}

/// DescribeEndpoint and DescribeEndpointConfig of `name`, in service, with the one
/// variant `AllTraffic` as `variant` makes it; asynchronous when `asynchronous`.
fn described_variant(
    name: &'static str,
    variant: fn() -> ProductionVariant,
    asynchronous: bool,
) -> [Rule; 2] {
    described_variant_at(name, variant, asynchronous, None)
}

/// [`described_variant`], DescribeEndpoint stating `current` instances.
fn described_variant_at(
    name: &'static str,
    variant: fn() -> ProductionVariant,
    asynchronous: bool,
    current: Option<i32>,
) -> [Rule; 2] {
    use aws_sdk_sagemaker::operation::describe_endpoint::DescribeEndpointOutput;
    use aws_sdk_sagemaker::operation::describe_endpoint_config::DescribeEndpointConfigOutput;
    use aws_sdk_sagemaker::types::{AsyncInferenceConfig, AsyncInferenceOutputConfig};
    let endpoint = mock!(aws_sdk_sagemaker::Client::describe_endpoint).then_output(move || {
        DescribeEndpointOutput::builder()
            .endpoint_name(name)
            .endpoint_config_name(format!("{name}-config"))
            .endpoint_status(EndpointStatus::InService)
            .production_variants(
                ProductionVariantSummary::builder()
                    .variant_name("AllTraffic")
                    .set_current_instance_count(current)
                    .build(),
            )
            .build()
    });
    let config =
        mock!(aws_sdk_sagemaker::Client::describe_endpoint_config).then_output(move || {
            DescribeEndpointConfigOutput::builder()
                .endpoint_config_name(format!("{name}-config"))
                .production_variants(variant())
                .set_async_inference_config(asynchronous.then(|| {
                    AsyncInferenceConfig::builder()
                        .output_config(
                            AsyncInferenceOutputConfig::builder()
                                .s3_output_path("s3://bucket/out/")
                                .build(),
                        )
                        .build()
                }))
                .build()
        });
    [endpoint, config]
}

/// An account of one asynchronous endpoint, `name`, serving `variant` (`current`
/// instances now; `None`: as configured), ml.g5.xlarge async inference at $1.41/h,
/// and no CloudWatch datapoint: SageMaker publishes no `Invocations` for it.
fn async_g5_account(
    name: &'static str,
    variant: fn() -> ProductionVariant,
    current: Option<i32>,
) -> Account {
    let [a, b] = described_variant_at(name, variant, true, current);
    Account {
        prices: std::sync::Arc::new(OnlyThese(vec![(
            PriceKey::AsyncInference {
                region: "us-east-1".into(),
                instance_type: "ml.g5.xlarge".into(),
            },
            Decimal::new(141, 2),
        )])),
        ..account(
            &[&listed_alone(name), &a, &b],
            &[&metrics_of_variant_0(&[], &[])],
            &[],
        )
    }
}

/// GetMetricData answering each query id given with its one value (the rest:
/// no datapoint).
fn metric_answers(answers: &'static [(&'static str, f64)]) -> Rule {
    use aws_sdk_cloudwatch::operation::get_metric_data::GetMetricDataOutput;
    use aws_sdk_cloudwatch::types::MetricDataResult;
    mock!(aws_sdk_cloudwatch::Client::get_metric_data).then_output(move || {
        let mut output = GetMetricDataOutput::builder();
        for &(id, value) in answers {
            output = output
                .metric_data_results(MetricDataResult::builder().id(id).values(value).build());
        }
        output.build()
    })
}

/// CloudWatch's answer to variant 0's queries: its invocations not answered
/// (`InternalError`), its latency answered with no datapoints.
fn variant_0_invocations_unanswered() -> Rule {
    use aws_sdk_cloudwatch::operation::get_metric_data::GetMetricDataOutput;
    use aws_sdk_cloudwatch::types::{MessageData, MetricDataResult, StatusCode};
    mock!(aws_sdk_cloudwatch::Client::get_metric_data).then_output(|| {
        GetMetricDataOutput::builder()
            .metric_data_results(
                MetricDataResult::builder()
                    .id("i0")
                    .status_code(StatusCode::InternalError)
                    .messages(
                        MessageData::builder()
                            .code("InternalError")
                            .value("Internal service error")
                            .build(),
                    )
                    .build(),
            )
            .metric_data_results(
                MetricDataResult::builder()
                    .id("l0")
                    .status_code(StatusCode::Complete)
                    .build(),
            )
            .build()
    })
}

/// GetMetricData answering `i0` and `l0` with the values given (none: no datapoint).
fn metrics_of_variant_0(invocations: &'static [f64], latency_us: &'static [f64]) -> Rule {
    use aws_sdk_cloudwatch::operation::get_metric_data::GetMetricDataOutput;
    use aws_sdk_cloudwatch::types::MetricDataResult;
    mock!(aws_sdk_cloudwatch::Client::get_metric_data).then_output(move || {
        GetMetricDataOutput::builder()
            .metric_data_results(
                MetricDataResult::builder()
                    .id("i0")
                    .set_values(Some(invocations.to_vec()))
                    .build(),
            )
            .metric_data_results(
                MetricDataResult::builder()
                    .id("l0")
                    .set_values(Some(latency_us.to_vec()))
                    .build(),
            )
            .build()
    })
}

#[tokio::test]
async fn an_asynchronous_endpoint_is_never_idle_for_want_of_invocations_it_has_no_metric_for() {
    // SageMaker publishes no `Invocations` for asynchronous endpoints: CloudWatch
    // has no datapoint however busy the endpoint is (say 10,000 calls a day).
    let account = async_g5_account(
        "batchy",
        || {
            ProductionVariant::builder()
                .variant_name("AllTraffic")
                .model_name("batchy-model")
                .instance_type(ProductionVariantInstanceType::MlG5Xlarge)
                .initial_instance_count(2)
                .build()
        },
        None,
    );
    let view = last_day(&account).await;
    let row = &view.rows[0];
    assert_eq!(row.kind, VariantKind::AsyncInstance);
    // 2 instances × $1.41/h = $2.82/h, burning whether called or not; over 24 h
    // that is $67.68.
    assert_eq!(row.usd_per_hour, Some(Decimal::new(282, 2)));
    assert_eq!(row.window_cost_usd, Some(Decimal::new(6768, 2)));
    // Calls unknown, not 0: no idle flag, no per-1,000 figure, no utilisation.
    assert!(!row.flags.contains(&Flag::Idle), "{:?}", row.flags);
    assert!(row.flags.is_empty(), "{:?}", row.flags);
    assert_eq!(row.invocations, None);
    assert_eq!(row.usd_per_1000_invocations, None);
    assert_eq!(row.utilisation, None);
    assert!(
        row.notes
            .iter()
            .any(|n| n.starts_with("asynchronous endpoint: SageMaker publishes no CloudWatch")),
        "{:?}",
        row.notes
    );
    assert_eq!(view.totals.idle_usd_per_hour, Decimal::ZERO);
    assert_eq!(view.totals.usd_per_hour, Decimal::new(282, 2));
}

#[tokio::test]
async fn a_called_serverless_endpoint_without_its_per_second_rate_is_unpriced_not_free() {
    use aws_sdk_sagemaker::types::ProductionVariantServerlessConfig;
    let list = listed_alone("pay-per-use");
    let [a, b] = described_variant(
        "pay-per-use",
        || {
            ProductionVariant::builder()
                .variant_name("AllTraffic")
                .model_name("pay-per-use-model")
                .serverless_config(
                    ProductionVariantServerlessConfig::builder()
                        .memory_size_in_mb(3072)
                        .max_concurrency(5)
                        .build(),
                )
                .build()
        },
        false,
    );
    // 720 calls, 288 s of ModelLatency (288,000,000 µs) in the window.
    let metrics = metrics_of_variant_0(&[720.0], &[288e6]);
    // The Price List down and no snapshot row: no serverless rate at all.
    let account = Account {
        prices: std::sync::Arc::new(OnlyThese(Vec::new())),
        ..account(&[&list, &a, &b], &[&metrics], &[])
    };
    let view = last_day(&account).await;
    let row = &view.rows[0];
    assert_eq!(row.kind, VariantKind::Serverless);
    assert_eq!(row.invocations, Some(720));
    // 288 s at an unknown rate is an unknown cost, not $0.
    assert_eq!(row.flags, [Flag::Unpriced]);
    assert_eq!(row.window_cost_usd, None);
    assert_eq!(row.usd_per_1000_invocations, None);
    assert_eq!(row.usd_per_hour, None);
    let reason = row.unpriced_reason.as_deref().unwrap_or_default();
    assert!(
        reason.starts_with("called in the window, and the serverless per-second rate is unknown"),
        "{reason}"
    );
    assert_eq!(view.totals.unpriced, 1);
    assert_eq!(view.totals.window_cost_usd, Decimal::ZERO);
}

/// A serverless variant of 3 GB (no provisioned concurrency), `pay-per-use`,
/// seen over 24 h through CloudWatch's answer `metrics`, priced by the bundled
/// snapshot.
async fn serverless_3gb_view(metrics: Rule) -> EndpointsView {
    use aws_sdk_sagemaker::types::ProductionVariantServerlessConfig;
    let list = listed_alone("pay-per-use");
    let [a, b] = described_variant(
        "pay-per-use",
        || {
            ProductionVariant::builder()
                .variant_name("AllTraffic")
                .model_name("pay-per-use-model")
                .serverless_config(
                    ProductionVariantServerlessConfig::builder()
                        .memory_size_in_mb(3072)
                        .max_concurrency(5)
                        .build(),
                )
                .build()
        },
        false,
    );
    last_day(&account(&[&list, &a, &b], &[&metrics], &[])).await
}

/// A serverless variant is billed for the compute of its calls, per second at
/// its memory size's rate: 3,072 MB in us-east-1 is $0.00006/s, so 720 calls of
/// 0.4 s are 288 s × 0.00006 = $0.01728. Without CloudWatch's ModelLatency
/// that compute is not known, and neither is the window's cost: not $0.
#[tokio::test]
async fn a_called_serverless_endpoint_without_model_latency_has_no_window_cost_of_zero() {
    // 720 calls in the window, no ModelLatency datapoint.
    let view = serverless_3gb_view(metrics_of_variant_0(&[720.0], &[])).await;
    let row = &view.rows[0];
    assert_eq!(row.kind, VariantKind::Serverless);
    assert_eq!(row.invocations, Some(720));
    // Nothing stands between calls (no provisioned concurrency): $0/h, known.
    assert_eq!(row.usd_per_hour, Some(Decimal::ZERO));
    assert!(row.flags.is_empty(), "{:?}", row.flags);
    // The 720 calls' compute, whatever it was, is not known: no window cost, no
    // cost per 1,000 calls (was $0 and $0).
    assert_eq!(row.window_cost_usd, None);
    assert_eq!(row.usd_per_1000_invocations, None);
    assert!(
        row.notes.iter().any(|n| n.starts_with(
            "served 720 calls in the window, and CloudWatch has no ModelLatency for them"
        )),
        "{:?}",
        row.notes
    );
    assert_eq!(view.totals.window_cost_usd, Decimal::ZERO);
    assert_eq!(view.totals.window_unpriced, 1);
    assert_eq!(view.totals.unpriced, 0);
}

/// CloudWatch not answering a serverless variant's query (`InternalError`) says
/// nothing of its calls: it may have served 720 calls of 0.4 s, 288 s ×
/// $0.00006 = $0.01728 (3,072 MB, us-east-1), or none. Its window's cost is not
/// known, not $0.
#[tokio::test]
async fn a_serverless_endpoint_whose_query_cloudwatch_did_not_answer_has_no_window_cost_of_zero() {
    let metrics = variant_0_invocations_unanswered();
    let view = serverless_3gb_view(metrics).await;
    let row = &view.rows[0];
    assert_eq!(row.invocations, None);
    assert_eq!(row.usd_per_hour, Some(Decimal::ZERO));
    assert_eq!(row.window_cost_usd, None);
    assert_eq!(row.usd_per_1000_invocations, None);
    assert!(
        row.notes
            .iter()
            .any(|n| n.starts_with("its calls in the window are not known")),
        "{:?}",
        row.notes
    );
    assert_eq!(view.totals.window_unpriced, 1);
    assert_eq!(
        view.warnings,
        [
            "invocations of pay-per-use/AllTraffic unknown: CloudWatch answered InternalError: \
          Internal service error"
        ]
    );
}

#[tokio::test]
async fn an_uncalled_serverless_endpoint_without_its_rate_burns_nothing_and_says_so() {
    use aws_sdk_sagemaker::types::ProductionVariantServerlessConfig;
    let list = listed_alone("quiet-serverless");
    let [a, b] = described_variant(
        "quiet-serverless",
        || {
            ProductionVariant::builder()
                .variant_name("AllTraffic")
                .model_name("quiet-model")
                .serverless_config(
                    ProductionVariantServerlessConfig::builder()
                        .memory_size_in_mb(3072)
                        .max_concurrency(5)
                        .build(),
                )
                .build()
        },
        false,
    );
    let metrics = metrics_of_variant_0(&[], &[]);
    let account = Account {
        prices: std::sync::Arc::new(OnlyThese(Vec::new())),
        ..account(&[&list, &a, &b], &[&metrics], &[])
    };
    let view = last_day(&account).await;
    let row = &view.rows[0];
    // No provisioned concurrency and no call: nothing is billed, whatever the rate.
    assert_eq!(row.usd_per_hour, Some(Decimal::ZERO));
    assert_eq!(row.window_cost_usd, Some(Decimal::ZERO));
    assert!(row.flags.is_empty(), "{:?}", row.flags);
    assert!(
        row.notes
            .iter()
            .any(|n| n.starts_with("the serverless per-second rate is unknown")),
        "{:?}",
        row.notes
    );
    assert_eq!(view.totals.unpriced, 0);
}

/// A Cost Explorer metric: name, amount, unit.
type BilledMetric = (&'static str, &'static str, &'static str);

/// Reconciles `metered` against Cost Explorer's answer `bill` for 2026-11-29.
async fn reconcile_nov_29(metered: &Metered, bill: &Rule) -> Result<Reconciliation, AccountError> {
    let since = NaiveDate::from_ymd_opt(2026, 11, 29).unwrap();
    let options = ReconcileOptions::new(since, since + chrono::Days::new(1));
    account(&[], &[], &[bill])
        .reconcile(metered, &options)
        .await
}

/// One settled day, 2026-11-29, of Cost Explorer groups `(usage type, metrics)`.
fn one_billed_day(groups: &'static [(&'static str, &'static [BilledMetric])]) -> Rule {
    use aws_sdk_costexplorer::operation::get_cost_and_usage::GetCostAndUsageOutput;
    use aws_sdk_costexplorer::types::{DateInterval, Group, MetricValue, ResultByTime};
    mock!(aws_sdk_costexplorer::Client::get_cost_and_usage).then_output(move || {
        let mut day = ResultByTime::builder()
            .time_period(
                DateInterval::builder()
                    .start("2026-11-29")
                    .end("2026-11-30")
                    .build()
                    .unwrap(),
            )
            .estimated(false);
        for (key, metrics) in groups {
            let mut group = Group::builder().keys(*key);
            for (name, amount, unit) in *metrics {
                group = group.metrics(
                    *name,
                    MetricValue::builder().amount(*amount).unit(*unit).build(),
                );
            }
            day = day.groups(group.build());
        }
        GetCostAndUsageOutput::builder()
            .results_by_time(day.build())
            .build()
    })
}

#[tokio::test]
async fn the_bill_is_read_amortized_so_a_savings_plan_is_a_discount_not_a_free_day() {
    // 48 h of ml.m5.xlarge a Savings Plan covers. Unblended, the usage line is at
    // on-demand and a SavingsPlanNegation line of the same usage type cancels it:
    // $0 for the day. Amortized, it is at the plan's effective rate: 48 h × $0.23
    // × 0.72 = $7.9488 (a 28 % plan).
    let bill = one_billed_day(&[(
        "USE1-Host:ml.m5.xlarge",
        &[
            ("UnblendedCost", "0", "USD"),
            ("AmortizedCost", "7.9488", "USD"),
            ("UsageQuantity", "48", "Hrs"),
        ],
    )]);
    let r = reconcile_nov_29(&Metered::new("us-east-1"), &bill)
        .await
        .unwrap();
    let row = &r.rows[0];
    assert_eq!(row.billed_usd, Decimal::new(79488, 4));
    // On demand 48 × 0.23 = 11.04; 7.9488 ÷ 11.04 = 0.72; discount 7.9488 − 11.04
    // = −3.0912; all 11.04 of usage outside sagemeter (nothing metered).
    assert_eq!(row.effective_rate_ratio, Some(Decimal::new(72, 2)));
    assert_eq!(row.parts.discount_usd, Decimal::new(-30912, 4));
    assert_eq!(row.parts.outside_usd, Decimal::new(1104, 2));
    assert_eq!(r.days[0].verdict, Verdict::Explained);
    assert_eq!(r.billed_metric, "AmortizedCost");
}

#[tokio::test]
async fn a_billed_group_without_the_keys_asked_for_is_an_error_not_left_out() {
    // $11.04 billed in a group without its usage type: dropping it would make the
    // day $11.04 cheaper than billed, unsaid.
    let bill = billed_days(&[("2026-11-29", false, "", "11.04", "48")]);
    let err = reconcile_nov_29(&Metered::new("us-east-1"), &bill)
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("a group of 2026-11-29 has the keys [], not the usage type asked for"),
        "{err}"
    );
}

#[tokio::test]
async fn a_group_without_the_amortized_amount_is_an_error_not_a_free_day() {
    // Cost Explorer answers every metric asked for; a group with only its
    // UnblendedCost and quantity is not the answer asked for, and reading its cost
    // as $0 would make 48 h of an instance a free day.
    let bill = one_billed_day(&[(
        "USE1-Host:ml.m5.xlarge",
        &[
            ("UnblendedCost", "11.04", "USD"),
            ("UsageQuantity", "48", "Hrs"),
        ],
    )]);
    let err = reconcile_nov_29(&Metered::new("us-east-1"), &bill)
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("the group USE1-Host:ml.m5.xlarge of 2026-11-29 has no AmortizedCost amount"),
        "{err}"
    );
}

#[tokio::test]
async fn a_group_without_the_usage_quantity_is_an_error_not_zero_hours() {
    // 2 × ml.m5.xlarge all day: 48 h × $0.23 = $11.04, its AmortizedCost, and no
    // UsageQuantity. Read as 0 h, the day's Q × r would be 0 × 0.23 = $0 and the
    // whole $11.04 billed a "discount" explaining the gap; the hours are not
    // known, and none of them is guessed.
    let bill = one_billed_day(&[(
        "USE1-Host:ml.m5.xlarge",
        &[("AmortizedCost", "11.04", "USD")],
    )]);
    let err = reconcile_nov_29(&Metered::new("us-east-1"), &bill)
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("the group USE1-Host:ml.m5.xlarge of 2026-11-29 has no UsageQuantity amount"),
        "{err}"
    );
}

/// Cost Explorer's answer for `days`: each `(day, estimated, usage type,
/// AmortizedCost, hours)`, a group without keys for an empty usage type.
fn billed_days(days: &[(&str, bool, &str, &str, &str)]) -> Rule {
    use aws_sdk_costexplorer::operation::get_cost_and_usage::GetCostAndUsageOutput;
    use aws_sdk_costexplorer::types::{DateInterval, Group, MetricValue, ResultByTime};
    let days: Vec<(String, bool, String, String, String)> = days
        .iter()
        .map(|&(day, estimated, usage_type, usd, hours)| {
            let owned = |text: &str| text.to_string();
            (
                owned(day),
                estimated,
                owned(usage_type),
                owned(usd),
                owned(hours),
            )
        })
        .collect();
    mock!(aws_sdk_costexplorer::Client::get_cost_and_usage).then_output(move || {
        let metric =
            |amount: &str, unit: &str| MetricValue::builder().amount(amount).unit(unit).build();
        let mut out = GetCostAndUsageOutput::builder();
        for (day, estimated, usage_type, usd, hours) in &days {
            let start = NaiveDate::parse_from_str(day, "%Y-%m-%d").unwrap();
            out = out.results_by_time(
                ResultByTime::builder()
                    .time_period(
                        DateInterval::builder()
                            .start(day)
                            .end(start.succ_opt().unwrap().to_string())
                            .build()
                            .unwrap(),
                    )
                    .estimated(*estimated)
                    .groups(
                        Group::builder()
                            .set_keys(
                                (!usage_type.is_empty()).then(|| vec![usage_type.to_string()]),
                            )
                            .metrics("AmortizedCost", metric(usd, "USD"))
                            .metrics("UsageQuantity", metric(hours, "Hrs"))
                            .build(),
                    )
                    .build(),
            );
        }
        out.build()
    })
}

/// Cost Explorer's answer for the settled day 2026-11-29: each `(usage type,
/// AmortizedCost, hours)`.
fn billed_nov_29(groups: &[(&str, &str, &str)]) -> Rule {
    let days: Vec<_> = groups
        .iter()
        .map(|&(usage_type, usd, hours)| ("2026-11-29", false, usage_type, usd, hours))
        .collect();
    billed_days(&days)
}

/// A us-east-1 ledger of `receipts`, added in order as read from `calls.jsonl`.
fn ledger(receipts: impl IntoIterator<Item = crate::billing::Cost>) -> Metered {
    let mut metered = Metered::new("us-east-1");
    for cost in receipts {
        metered.add("calls.jsonl", &cost).unwrap();
    }
    metered
}

/// The row of `r` for the usage-type group `group` (without its region prefix).
fn row<'a>(r: &'a Reconciliation, group: &str) -> &'a ReconcileRow {
    r.rows
        .iter()
        .find(|row| row.group == group)
        .unwrap_or_else(|| panic!("no row {group} in {:?}", r.rows))
}

/// A receipt of one hour of `rt`'s one ml.m5.xlarge at `rate` $/h, made at `at`
/// (no accrual: a receipt written before receipts carried one).
fn hour_at(id: &str, at: &str, rate: &str) -> crate::billing::Cost {
    serde_json::from_value(serde_json::json!({
        "call_id": id, "at": at, "endpoint": "rt", "variant": "AllTraffic",
        "billing": {"kind": "instance", "instance_type": "ml.m5.xlarge", "instance_count": 1},
        "allocation": "processor_sharing",
        "usage": {"operation": "InvokeEndpoint", "latency_us": 1000, "bytes_in": 0,
                  "bytes_out": 0, "variant": "AllTraffic", "outcome": "ok"},
        "lines": [{"item": "compute", "quantity": "1", "unit": "instance_hours",
            "price": {"status": "priced", "usd_per_unit": rate, "cost_usd": rate,
                      "provenance": {"source": "live", "sku": null, "effective_date": null,
                                     "fetched_at": null, "note": null}}}],
        "cost_usd": rate, "currency": "USD", "region": "us-east-1",
        "running_client_usd": "0", "running_endpoint_usd": "0"
    }))
    .unwrap()
}

#[tokio::test]
async fn each_day_is_valued_at_its_own_on_demand_rate_across_a_price_change() {
    // AWS lowered ml.m5.xlarge from $0.24/h to $0.22/h at midnight on 11-29; the
    // receipts of each day carry that day's rate. Billed at list price: 24 h ×
    // 0.24 = $5.76 on 11-28, 24 h × 0.22 = $5.28 on 11-29; no discount either day.
    let metered = ledger([
        hour_at("a", "2026-11-28T10:00:00Z", "0.24"),
        hour_at("b", "2026-11-29T10:00:00Z", "0.22"),
    ]);
    let bill = billed_days(&[
        ("2026-11-28", false, "USE1-Host:ml.m5.xlarge", "5.76", "24"),
        ("2026-11-29", false, "USE1-Host:ml.m5.xlarge", "5.28", "24"),
    ]);
    let since = NaiveDate::from_ymd_opt(2026, 11, 28).unwrap();
    let options = ReconcileOptions::new(since, since + chrono::Days::new(2));
    let r = account(&[], &[], &[&bill])
        .reconcile(&metered, &options)
        .await
        .unwrap();
    // 11-28: on demand 5.76 = billed; metered 0.24, the other 23 h (5.52) outside.
    assert_eq!(r.days[0].parts.discount_usd, Decimal::ZERO);
    assert_eq!(r.days[0].parts.outside_usd, Decimal::new(552, 2));
    assert_eq!(r.rows[0].effective_rate_ratio, Some(Decimal::ONE));
    // 11-29: on demand 5.28 = billed; metered 0.22, outside 5.06.
    assert_eq!(r.days[1].parts.discount_usd, Decimal::ZERO);
    assert_eq!(r.days[1].parts.outside_usd, Decimal::new(506, 2));
    assert_eq!(r.days[0].verdict, Verdict::Explained);
    assert_eq!(r.days[1].verdict, Verdict::Explained);
}

/// A receipt of one 36 s call (0.01 instance-hours) on `rt`'s one ml.g5.xlarge,
/// ending on the hour `ends` (begun 36 s before), priced at `rate` $/h, with the
/// process's running `accrued` and `allocated` (the variant alone standing: as the
/// meter writes it, no standing parts).
fn g5_call_ending(
    id: &str,
    ends: &str,
    rate: &str,
    accrued: &str,
    allocated: &str,
) -> crate::billing::Cost {
    let ends: chrono::DateTime<chrono::Utc> = ends.parse().unwrap();
    let at = ends - chrono::Duration::seconds(36);
    let compute = (rate.parse::<Decimal>().unwrap() / Decimal::ONE_HUNDRED).to_string();
    serde_json::from_value(serde_json::json!({
        "call_id": id, "at": at.to_rfc3339(), "endpoint": "rt", "variant": "AllTraffic",
        "billing": {"kind": "instance", "instance_type": "ml.g5.xlarge", "instance_count": 1},
        "allocation": "processor_sharing",
        "usage": {"operation": "InvokeEndpoint", "latency_us": 36_000_000, "bytes_in": 0,
                  "bytes_out": 0, "variant": "AllTraffic", "outcome": "ok"},
        "lines": [priced_hours("0.01", rate, &compute)],
        "cost_usd": compute, "currency": "USD", "region": "us-east-1",
        "running_client_usd": "0", "running_endpoint_usd": "0",
        "accrual": {"accrued_usd": accrued, "allocated_usd": allocated, "utilisation": null}
    }))
    .unwrap()
}

#[tokio::test]
async fn a_day_whose_receipts_carry_two_rates_is_valued_at_its_latest_receipts() {
    // 1 × ml.g5.xlarge stands all day. AWS cuts its price from $1.408/h to $1.20/h
    // effective 11-29 00:00 UTC (AWS changes prices at midnight UTC); the meter's
    // cached price picks up the new rate at 06:00. The bill of 11-29 is at the new
    // rate all day: 24 h × 1.20 = $28.80.
    //
    // The ledger begins mid-process (receipt a: counting starts), and each call
    // is 0.01 h; the running accrual grows at the rate the meter knew:
    //   a  ends 11-28 23:00 at 1.408: accrued 100, allocated 50
    //   b  ends 11-29 01:00 at 1.408: + 2 h × 1.408 = 2.816 → 102.816, half of it
    //      (1.408) on 11-29; allocated + 0.01408
    //   c  ends 11-29 07:00 at 1.2:   + 5 h × 1.408 + 1 h × 1.2 = 8.24 → 111.056;
    //      allocated + 0.012
    //   d  ends 11-30 01:00 at 1.2:   + 18 h × 1.2 = 21.6 → 132.656, 17 h of it
    //      (20.4) on 11-29; allocated + 0.012 (on 11-30)
    // 11-29 accrued 1.408 + 8.24 + 20.4 = 30.048 (= 6 × 1.408 + 18 × 1.2), of it
    // allocated (metered) 0.01408 + 0.012 = 0.02608; idle 30.02192.
    let metered = ledger([
        g5_call_ending("a", "2026-11-28T23:00:00Z", "1.408", "100", "50"),
        g5_call_ending("b", "2026-11-29T01:00:00Z", "1.408", "102.816", "50.01408"),
        g5_call_ending("c", "2026-11-29T07:00:00Z", "1.2", "111.056", "50.02608"),
        g5_call_ending("d", "2026-11-30T01:00:00Z", "1.2", "132.656", "50.03808"),
    ]);
    let bill = billed_nov_29(&[("USE1-Host:ml.g5.xlarge", "28.80", "24")]);
    let r = reconcile_nov_29(&metered, &bill).await.unwrap();
    let d = |text: &str| text.parse::<Decimal>().unwrap();
    let row = row(&r, "Host:ml.g5.xlarge");
    assert_eq!(row.metered_usd, d("0.02608"));
    assert_eq!(row.parts.idle_instance_usd, d("30.02192"));
    // The rate in force is the latest receipt's, 1.2: on demand 24 × 1.2 = 28.80
    // = billed, no discount. The meter saw 0.02608 + 30.02192 = 30.048, 1.248
    // more than on demand (the 6 h it priced at the stale rate, 6 × 0.208): no
    // usage outside sagemeter, −1.248 unexplained. At the first receipt's 1.408
    // it read as a 14.8 % discount (28.80 − 33.792 = −4.992) and 3.744 of phantom
    // usage outside sagemeter, explained.
    assert_eq!(row.effective_rate_ratio, Some(Decimal::ONE));
    assert_eq!(row.parts.discount_usd, Decimal::ZERO);
    assert_eq!(row.parts.outside_usd, Decimal::ZERO);
    assert_eq!(row.parts.unexplained_usd, d("-1.248"));
    assert_eq!(r.days[0].unexplained_gross_usd, d("1.248"));
    assert_eq!(r.days[0].verdict, Verdict::Differs);
    // A note says the day's receipts carried two rates, and which one values it.
    assert!(
        r.notes
            .iter()
            .any(|n| n.contains("Host:ml.g5.xlarge on 2026-11-29")
                && n.contains("$1.408")
                && n.contains("$1.2")),
        "{:?}",
        r.notes
    );
}

/// Where a price came from, as a receipt line's provenance says it (JSON): the
/// bundled snapshot (as of 2026-05-20, never fetched), or a Price List answer
/// (`source` live or cache) fetched at `fetched`, its term effective 11-29.
fn snapshot_price() -> serde_json::Value {
    serde_json::json!({"source": "snapshot", "sku": null, "effective_date": "2026-05-20",
                       "fetched_at": null, "note": "bundled snapshot"})
}

/// See [`snapshot_price`].
fn fetched_price(source: &str, fetched: &str) -> serde_json::Value {
    serde_json::json!({"source": source, "sku": "G5XL", "effective_date": "2026-11-29T00:00:00Z",
                       "fetched_at": fetched, "note": null})
}

/// A receipt of one 36 s call (0.01 instance-hours) on `rt`'s one ml.g5.xlarge,
/// begun at `at`, priced at `rate` $/h from `provenance`, with the process's
/// running `accrued` and `allocated` (the variant alone standing: as the meter
/// writes it, no standing parts).
fn g5_call_at(
    id: &str,
    at: &str,
    (rate, provenance): (&str, serde_json::Value),
    accrued: &str,
    allocated: &str,
) -> crate::billing::Cost {
    let compute = (rate.parse::<Decimal>().unwrap() / Decimal::ONE_HUNDRED).to_string();
    serde_json::from_value(serde_json::json!({
        "call_id": id, "at": at, "endpoint": "rt", "variant": "AllTraffic",
        "billing": {"kind": "instance", "instance_type": "ml.g5.xlarge", "instance_count": 1},
        "allocation": "processor_sharing",
        "usage": {"operation": "InvokeEndpoint", "latency_us": 36_000_000, "bytes_in": 0,
                  "bytes_out": 0, "variant": "AllTraffic", "outcome": "ok"},
        "lines": [{"item": "compute", "quantity": "0.01", "unit": "instance_hours",
            "price": {"status": "priced", "usd_per_unit": rate, "cost_usd": compute,
                      "provenance": provenance}}],
        "cost_usd": compute, "currency": "USD", "region": "us-east-1",
        "running_client_usd": "0", "running_endpoint_usd": "0",
        "accrual": {"accrued_usd": accrued, "allocated_usd": allocated, "utilisation": null}
    }))
    .unwrap()
}

#[tokio::test]
async fn replicas_on_a_stale_price_do_not_set_the_days_rate() {
    // 1 × ml.g5.xlarge stands all day. AWS cuts it from $1.408/h to $1.20/h
    // effective 11-29 00:00 UTC and bills 11-29 all day at the new rate: 24 h ×
    // 1.20 = $28.80. Two replicas meter it, each call 36 s (0.01 h):
    //   A (a.jsonl) on a cached price fetched 11-28 06:00 (1.408) until it
    //     refreshes live at 06:00 (1.20, fetched 11-29 06:00):
    //     a0 11-28 23:00 at 1.408: accrued 100, allocated 50 (counting starts,
    //        at its end 23:00:36)
    //     a1 11-29 00:00 at 1.408: + 1 h × 1.408 = 1.408 → 101.408; allocated
    //        + 0.01408
    //     a2 06:00 at 1.408: + 6 h × 1.408 = 8.448 → 109.856; + 0.01408
    //     a3 12:00 at 1.2:   + 6 h × 1.2 = 7.2 → 117.056; + 0.012
    //     a4 23:00 at 1.2:   + 11 h × 1.2 = 13.2 → 130.256; + 0.012
    //   B (b.jsonl) on the bundled snapshot (1.408, never fetched) all along:
    //     b0 11-28 23:00 at 1.408: accrued 10, allocated 5 (counting starts)
    //     b1 11-29 23:59:24 at 1.408, the day's latest receipt, ending 11-30
    //        00:00: + 24.99 h × 1.408 = 35.18592 → 45.18592, of it 24 h × 1.408
    //        = 33.792 on 11-29; allocated + 0.01408
    // The replicas count the same instance once, at the higher rate: B's 1.408
    // covers all of 11-29, so the day accrued 24 × 1.408 = 33.792. Metered
    // (the calls' lines on 11-29, a1 a2 a3 a4 b1): 0.01408 + 0.01408 + 0.012 +
    // 0.012 + 0.01408 = 0.06624; idle 33.792 − 0.06624 = 33.72576.
    let mut metered = Metered::new("us-east-1");
    let cached = || fetched_price("cache", "2026-11-28T06:00:00Z");
    let live = || fetched_price("live", "2026-11-29T06:00:00Z");
    for cost in [
        g5_call_at(
            "a0",
            "2026-11-28T23:00:00Z",
            ("1.408", cached()),
            "100",
            "50",
        ),
        g5_call_at(
            "a1",
            "2026-11-29T00:00:00Z",
            ("1.408", cached()),
            "101.408",
            "50.01408",
        ),
        g5_call_at(
            "a2",
            "2026-11-29T06:00:00Z",
            ("1.408", cached()),
            "109.856",
            "50.02816",
        ),
        g5_call_at(
            "a3",
            "2026-11-29T12:00:00Z",
            ("1.2", live()),
            "117.056",
            "50.04016",
        ),
        g5_call_at(
            "a4",
            "2026-11-29T23:00:00Z",
            ("1.2", live()),
            "130.256",
            "50.05216",
        ),
    ] {
        metered.add("a.jsonl", &cost).unwrap();
    }
    for cost in [
        g5_call_at(
            "b0",
            "2026-11-28T23:00:00Z",
            ("1.408", snapshot_price()),
            "10",
            "5",
        ),
        g5_call_at(
            "b1",
            "2026-11-29T23:59:24Z",
            ("1.408", snapshot_price()),
            "45.18592",
            "5.01408",
        ),
    ] {
        metered.add("b.jsonl", &cost).unwrap();
    }
    let bill = billed_nov_29(&[("USE1-Host:ml.g5.xlarge", "28.80", "24")]);
    let r = reconcile_nov_29(&metered, &bill).await.unwrap();
    let d = |text: &str| text.parse::<Decimal>().unwrap();
    let row = row(&r, "Host:ml.g5.xlarge");
    assert_eq!(row.metered_usd, d("0.06624"));
    assert_eq!(row.parts.idle_instance_usd, d("33.72576"));
    // The day's rate is the freshest price looked up on it, A's fetched at
    // 06:00 (1.20), not the latest receipt's, B's snapshot price: on demand 24 ×
    // 1.20 = 28.80 = billed, no discount, ratio 1. The meters saw 33.792, 4.992
    // more (B's 24 stale hours × 0.208): nothing outside sagemeter, −4.992
    // unexplained, the day differs. At B's 1.408 it read 33.792 on demand, a
    // −4.992 discount that is not there, and nothing unexplained.
    assert_eq!(row.effective_rate_ratio, Some(Decimal::ONE), "{row:?}");
    assert_eq!(row.parts.discount_usd, Decimal::ZERO, "{row:?}");
    assert_eq!(row.parts.outside_usd, Decimal::ZERO, "{row:?}");
    assert_eq!(row.parts.unexplained_usd, d("-4.992"), "{row:?}");
    assert_eq!(r.days[0].verdict, Verdict::Differs);
    assert!(
        r.notes.iter().any(|n| n.contains("Host:ml.g5.xlarge on 2026-11-29")
            && n.contains("valued at $1.2,")),
        "{:?}",
        r.notes
    );
}

#[tokio::test]
async fn a_process_restarted_on_the_snapshot_does_not_set_the_days_rate() {
    // 1 × ml.g5.xlarge, cut from $1.408/h to $1.20/h effective 11-29 00:00 UTC:
    // billed 24 h × 1.20 = $28.80. One ledger; each call 36 s (0.01 h).
    //   Process 1, on a price cached from a fetch at 11-28 06:00 (1.408), fetched
    //   live again at 11-29 06:00 (1.20):
    //     p0 11-28 23:00 at 1.408: accrued 100, allocated 50 (counting starts,
    //        at 23:00:36)
    //     p1 11-29 06:00 at 1.408: + 7 h × 1.408 = 9.856 → 109.856, 6.01 h of
    //        it (00:00 to 06:00:36, 8.46208) on 11-29; allocated + 0.01408
    //     p2 12:00 at 1.2: + 6 h × 1.2 = 7.2 → 117.056; allocated + 0.012
    //   It stops; process 2 starts at 23:00 without the Price List, on the
    //   bundled snapshot (1.408):
    //     q1 23:00 at 1.408, its first call: accrued 0.01 h × 1.408 = 0.01408,
    //        allocated as much
    //     q2 23:30 at 1.408, the day's latest receipt: + 0.5 h × 1.408 = 0.704
    //        → 0.71808; allocated + 0.01408 → 0.02816
    // 11-29 accrued 8.46208 + 7.2 + 0.01408 + 0.704 = 16.38016; metered (lines)
    // 0.01408 + 0.012 + 0.01408 + 0.01408 = 0.05424; idle 16.32592.
    let cached = || fetched_price("cache", "2026-11-28T06:00:00Z");
    let metered = ledger([
        g5_call_at(
            "p0",
            "2026-11-28T23:00:00Z",
            ("1.408", cached()),
            "100",
            "50",
        ),
        g5_call_at(
            "p1",
            "2026-11-29T06:00:00Z",
            ("1.408", cached()),
            "109.856",
            "50.01408",
        ),
        g5_call_at(
            "p2",
            "2026-11-29T12:00:00Z",
            ("1.2", fetched_price("live", "2026-11-29T06:00:00Z")),
            "117.056",
            "50.02608",
        ),
        g5_call_at(
            "q1",
            "2026-11-29T23:00:00Z",
            ("1.408", snapshot_price()),
            "0.01408",
            "0.01408",
        ),
        g5_call_at(
            "q2",
            "2026-11-29T23:30:00Z",
            ("1.408", snapshot_price()),
            "0.71808",
            "0.02816",
        ),
    ]);
    let bill = billed_nov_29(&[("USE1-Host:ml.g5.xlarge", "28.80", "24")]);
    let r = reconcile_nov_29(&metered, &bill).await.unwrap();
    let d = |text: &str| text.parse::<Decimal>().unwrap();
    let row = row(&r, "Host:ml.g5.xlarge");
    assert_eq!(row.metered_usd, d("0.05424"));
    assert_eq!(row.parts.idle_instance_usd, d("16.32592"));
    // Valued at the price fetched at 06:00, 1.20, not q2's snapshot price: on
    // demand 28.80 = billed, no discount, ratio 1; outside sagemeter 28.80 −
    // 16.38016 = 12.41984 (the 11.48 h no receipt covers, 12:00:36 to 23:00 and
    // 23:30:36 to 24:00, × 1.2 = 13.776, less the 6.52 h metered at 0.208 too
    // much, 1.35616). At q2's 1.408: 33.792 on demand, a −4.992 discount and
    // 17.41184 outside.
    assert_eq!(row.effective_rate_ratio, Some(Decimal::ONE), "{row:?}");
    assert_eq!(row.parts.discount_usd, Decimal::ZERO, "{row:?}");
    assert_eq!(row.parts.outside_usd, d("12.41984"), "{row:?}");
    assert_eq!(row.parts.unexplained_usd, Decimal::ZERO, "{row:?}");
    assert_eq!(r.days[0].verdict, Verdict::Explained);
}

/// The receipt of a 60 s call `id` at `at` on 1 × ml.m5.xlarge ($0.23/h),
/// amortised, the first in its ledger: half an hour, $0.115, the accrual at 100.
fn first_m5_call(id: &str, at: &str) -> crate::billing::Cost {
    amortized_receipt(
        id,
        at,
        60,
        "ml.m5.xlarge",
        ("0.5", "0.23", "0.115"),
        "100",
        serde_json::json!([]),
    )
}

/// An amortised receipt of `rt` (instance variant `instance_type` × `count`),
/// called at `at` for `latency_s`, its one compute line `hours` instance-hours
/// at `rate` costing `usd`, its accrual `accrued` (all of it allocated, as an
/// amortised call's is) paying for `standing_parts` (JSON, empty: its own alone).
#[allow(clippy::too_many_arguments)]
fn amortized_receipt(
    id: &str,
    at: &str,
    latency_s: u64,
    instance_type: &str,
    (hours, rate, usd): (&str, &str, &str),
    accrued: &str,
    standing_parts: serde_json::Value,
) -> crate::billing::Cost {
    serde_json::from_value(serde_json::json!({
        "call_id": id, "at": at, "endpoint": "rt", "variant": "AllTraffic",
        "billing": {"kind": "instance", "instance_type": instance_type, "instance_count": 1},
        "allocation": "amortized",
        "usage": {"operation": "InvokeEndpoint", "latency_us": latency_s * 1_000_000,
                  "bytes_in": 0, "bytes_out": 0, "variant": "AllTraffic", "outcome": "ok"},
        "lines": [{"item": "compute", "quantity": hours, "unit": "instance_hours",
            "price": {"status": "priced", "usd_per_unit": rate, "cost_usd": usd,
                      "provenance": {"source": "live", "sku": null, "effective_date": null,
                                     "fetched_at": null, "note": null}}}],
        "cost_usd": usd, "currency": "USD", "region": "us-east-1",
        "running_client_usd": "0", "running_endpoint_usd": "0",
        "accrual": {"accrued_usd": accrued, "allocated_usd": accrued, "utilisation": "1",
                    "standing_parts": standing_parts}
    }))
    .unwrap()
}

#[tokio::test]
async fn an_amortised_receipt_across_a_price_change_gives_its_own_day_its_calls_rate() {
    // 1 × ml.g5.xlarge, allocation amortised, called daily, each call ending at
    // 20:00. AWS cuts the price from $1.408/h to $1.20/h effective 11-29 00:00
    // UTC and bills 11-29 all day at it: 24 h × 1.20 = $28.80. The meter picks
    // the new price up at 06:00, so b's gap (11-28 20:00 to 11-29 20:00) is one
    // compute line per rate, in the order the rates were in force: 10 h × 1.408
    // = 14.08 (the stale stretch, bare provenance) then 14 h × 1.2 = 16.80 (the
    // call's own rate, with its SKU and effective date). c's gap is 24 h × 1.2 =
    // 28.80. Accrual: a 10 (counting starts), b + 30.88 = 40.88, c + 28.80 = 69.68.
    let own_line = |hours: &str, usd: &str| g5_at_1_20(hours, usd, "2026-11-29T06:00:00Z");
    // As the meter writes them: a variant alone carries no standing parts (the
    // key is left out of the JSON), its instances are its billing's.
    let receipt = |id: &str, at: &str, lines: serde_json::Value, usd: &str, accrued: &str| {
        let cost: crate::billing::Cost = serde_json::from_value(serde_json::json!({
            "call_id": id, "at": at, "endpoint": "rt", "variant": "AllTraffic",
            "billing": {"kind": "instance", "instance_type": "ml.g5.xlarge", "instance_count": 1},
            "allocation": "amortized",
            "usage": {"operation": "InvokeEndpoint", "latency_us": 60_000_000u64,
                      "bytes_in": 0, "bytes_out": 0, "variant": "AllTraffic", "outcome": "ok"},
            "lines": lines,
            "cost_usd": usd, "currency": "USD", "region": "us-east-1",
            "running_client_usd": "0", "running_endpoint_usd": "0",
            "accrual": {"accrued_usd": accrued, "allocated_usd": accrued, "utilisation": "1"}
        }))
        .unwrap();
        cost
    };
    let metered = ledger([
        receipt(
            "a",
            "2026-11-28T19:59:00Z",
            serde_json::json!([priced_hours("0.01", "1.408", "0.01408")]),
            "0.01408",
            "10",
        ),
        receipt(
            "b",
            "2026-11-29T19:59:00Z",
            serde_json::json!([priced_hours("10", "1.408", "14.08"), own_line("14", "16.8")]),
            "30.88",
            "40.88",
        ),
        receipt(
            "c",
            "2026-11-30T19:59:00Z",
            serde_json::json!([own_line("24", "28.8")]),
            "28.8",
            "69.68",
        ),
    ]);
    let bill = billed_nov_29(&[("USE1-Host:ml.g5.xlarge", "28.80", "24")]);
    let r = reconcile_nov_29(&metered, &bill).await.unwrap();
    let row = row(&r, "Host:ml.g5.xlarge");
    // b is 11-29's only receipt and its call's rate is 1.2: on demand 24 × 1.2 =
    // 28.80 = billed, ratio 1, no discount. b's lines cover its gap in order:
    // the 10 h at 1.408 from 11-28 20:00 to 11-29 06:00 (4 h on 11-28, 6 h on
    // 11-29), the 14 h at 1.2 from 06:00 to 20:00. Metered on 11-29: 6 × 1.408 =
    // 8.448 plus 16.80, plus c's 4 h × 1.2 = 4.80 (20:00 to 24:00): 30.048,
    // 1.248 more than billed (the 6 stale hours on 11-29 × 0.208), nothing
    // outside sagemeter. Spread evenly over b's 24 h instead, 30.88 × 20/24 +
    // 4.80 = 30.5333… would put 4 × 0.208 × 20/24 of 11-28's stale hours here
    // too. At b's first line's 1.408: on demand 33.792, a −4.992 discount, ratio
    // 0.8523, and phantom usage outside sagemeter.
    assert_eq!(row.effective_rate_ratio, Some(Decimal::ONE), "{row:?}");
    assert_eq!(row.parts.discount_usd, Decimal::ZERO, "{row:?}");
    assert_eq!(row.parts.outside_usd, Decimal::ZERO, "{row:?}");
    assert_eq!(row.metered_usd, Decimal::new(30048, 3), "{row:?}");
    assert_eq!(row.parts.unexplained_usd, Decimal::new(-1248, 3), "{row:?}");
    assert_eq!(r.days[0].verdict, Verdict::Differs);
}

#[tokio::test]
async fn an_amortised_receipt_whose_price_changed_at_midnight_agrees_with_the_bill() {
    // As above, but the meter picks the new price up at 00:00 itself: b's gap
    // (11-28 20:00 to 11-29 20:00) is 4 h × 1.408 = 5.632 (11-28's, 20:00 to
    // 24:00) then 20 h × 1.2 = 24.00 (11-29's, 00:00 to 20:00). c adds 24 h × 1.2
    // = 28.80, of which 11-29's 4 h (20:00 to 24:00) are 4.80. Metered on 11-29:
    // 24.00 + 4.80 = 28.80, as billed (24 h × 1.2): nothing unexplained. Spread
    // evenly over b's 24 h, (5.632 + 24) × 20/24 + 4.80 = 29.4933… would differ.
    let own_line = |hours: &str, usd: &str| g5_at_1_20(hours, usd, "2026-11-29T00:00:00Z");
    // Each call lasts 1 s: a at 19:59:59 ends at 20:00. As the meter writes
    // them: a variant alone carries no standing parts.
    let receipt = |id: &str, at: &str, lines: serde_json::Value, accrued: &str| {
        amortized_lines_receipt(
            id,
            at,
            ("ml.g5.xlarge", 1),
            lines,
            accrued,
            serde_json::json!([]),
        )
    };
    let metered = ledger([
        receipt(
            "a",
            "2026-11-28T19:59:59Z",
            serde_json::json!([priced_hours("0.01", "1.408", "0.01408")]),
            "10",
        ),
        receipt(
            "b",
            "2026-11-29T19:59:59Z",
            serde_json::json!([priced_hours("4", "1.408", "5.632"), own_line("20", "24")]),
            "39.632",
        ),
        receipt(
            "c",
            "2026-11-30T19:59:59Z",
            serde_json::json!([own_line("24", "28.8")]),
            "68.432",
        ),
    ]);
    let bill = billed_nov_29(&[("USE1-Host:ml.g5.xlarge", "28.80", "24")]);
    let r = reconcile_nov_29(&metered, &bill).await.unwrap();
    let row = row(&r, "Host:ml.g5.xlarge");
    assert_eq!(row.metered_usd, Decimal::new(2880, 2), "{row:?}");
    assert_eq!(row.parts.unexplained_usd, Decimal::ZERO, "{row:?}");
    assert_eq!(row.parts.outside_usd, Decimal::ZERO, "{row:?}");
    assert_eq!(row.parts.discount_usd, Decimal::ZERO, "{row:?}");
}

#[tokio::test]
async fn a_rows_difference_is_the_billed_less_the_rounded_metered_cost_and_its_parts_add_up_to_it()
{
    // 1 × ml.m5.xlarge at $0.23/h, allocation amortised. Call a ends 11-28
    // 23:00:00; call b, at 11-29 00:00:01 for 60 s, ends 00:01:01: its compute
    // line carries the 3,661 s between, 3,661 ÷ 3,600 h × 0.23 = 0.2338972222…,
    // a receipt's 12 places: 0.233897222222. 61 s of them are 11-29's:
    // 0.233897222222 × 61 ÷ 3,661 = 0.0038972222222185…, which has no end in
    // decimals; a row shows 12 places (docs/cli.md), 0.003897222222. AWS bills
    // 11-29 whole, 24 h × 0.23 = 5.52, so billed − metered = 5.52 −
    // 0.003897222222 = 5.516102777778, all of it outside sagemeter (nobody metered
    // 00:01:01 to 24:00). Worked out from the unrounded figure instead, the
    // difference would be 5.5161027777777814…: 18 places, and not billed −
    // metered as the row shows them.
    let metered = ledger([
        first_m5_call("a", "2026-11-28T22:59:00Z"),
        amortized_receipt(
            "b",
            "2026-11-29T00:00:01Z",
            60,
            "ml.m5.xlarge",
            ("1.016944444444", "0.23", "0.233897222222"),
            "100.233897222222",
            serde_json::json!([]),
        ),
    ]);
    let bill = billed_nov_29(&[("USE1-Host:ml.m5.xlarge", "5.52", "24")]);
    let r = reconcile_nov_29(&metered, &bill).await.unwrap();
    let d = |text: &str| text.parse::<Decimal>().unwrap();
    let row = row(&r, "Host:ml.m5.xlarge");
    assert_eq!(row.billed_usd, d("5.52"), "{row:?}");
    assert_eq!(row.metered_usd, d("0.003897222222"), "{row:?}");
    assert_eq!(row.difference_usd, d("5.516102777778"), "{row:?}");
    assert_eq!(row.difference_usd, row.billed_usd - row.metered_usd);
    assert!(row.difference_usd.scale() <= 12, "{row:?}");
    assert_eq!(row.parts.outside_usd, d("5.516102777778"), "{row:?}");
    let p = &row.parts;
    let parts = p.idle_instance_usd
        + p.outside_usd
        + p.standing_usd
        + p.discount_usd
        + p.other_usd
        + p.unexplained_usd;
    assert_eq!(parts, row.difference_usd, "{row:?}");
    let day = &r.days[0];
    assert_eq!(day.difference_usd, day.billed_usd - day.metered_usd);
    assert!(day.difference_usd.scale() <= 12, "{day:?}");
}

#[tokio::test]
async fn an_amortised_compute_line_after_a_quiet_weekend_is_filed_on_the_days_it_covers() {
    // 1 × ml.m5.xlarge at $0.23/h, allocation amortised. The last call before the
    // weekend ends Fri 11-27 18:00; the next ends Mon 11-30 09:00: its compute
    // line carries the 63 h between, 63 × 0.23 = $14.49, and the accrual grows
    // by as much (all of it allocated). Those hours are Fri 6 h (1.38), Sat 24 h
    // (5.52), Sun 24 h (5.52) and Mon 9 h (2.07): 1.38 + 5.52 + 5.52 + 2.07 = 14.49.
    let metered = ledger([
        first_m5_call("fri", "2026-11-27T17:59:00Z"),
        amortized_receipt(
            "mon",
            "2026-11-30T08:59:00Z",
            60,
            "ml.m5.xlarge",
            ("63", "0.23", "14.49"),
            "114.49",
            serde_json::json!([]),
        ),
    ]);
    // AWS bills each whole day: 24 h × 0.23 = $5.52.
    let bill = billed_days(&[
        ("2026-11-28", false, "USE1-Host:ml.m5.xlarge", "5.52", "24"),
        ("2026-11-29", false, "USE1-Host:ml.m5.xlarge", "5.52", "24"),
        ("2026-11-30", false, "USE1-Host:ml.m5.xlarge", "5.52", "24"),
    ]);
    let since = NaiveDate::from_ymd_opt(2026, 11, 28).unwrap();
    let options = ReconcileOptions::new(since, since + chrono::Days::new(3));
    let r = account(&[], &[], &[&bill])
        .reconcile(&metered, &options)
        .await
        .unwrap();
    let d = |text: &str| text.parse::<Decimal>().unwrap();
    // Sat and Sun: metered 5.52 each (24 h), none of it idle, nothing outside.
    for row in &r.rows[..2] {
        assert_eq!(row.metered_usd, d("5.52"), "{row:?}");
        assert_eq!(row.metered_quantity, Some(d("24")), "{row:?}");
        assert_eq!(row.parts.idle_instance_usd, Decimal::ZERO, "{row:?}");
        assert_eq!(row.parts.outside_usd, Decimal::ZERO, "{row:?}");
        assert_eq!(row.parts.unexplained_usd, Decimal::ZERO, "{row:?}");
    }
    // Mon: metered 9 h = 2.07; 09:00 to 24:00 unmetered, 15 h × 0.23 = 3.45 outside.
    let monday = &r.rows[2];
    assert_eq!(monday.day, NaiveDate::from_ymd_opt(2026, 11, 30).unwrap());
    assert_eq!(monday.metered_usd, d("2.07"));
    assert_eq!(monday.metered_quantity, Some(d("9")));
    assert_eq!(monday.parts.idle_instance_usd, Decimal::ZERO);
    assert_eq!(monday.parts.outside_usd, d("3.45"));
    assert_eq!(monday.parts.unexplained_usd, Decimal::ZERO);
    assert!(
        r.days
            .iter()
            .all(|day| day.verdict == Verdict::Explained || day.verdict == Verdict::Agrees),
        "{:?}",
        r.days
    );
}

#[tokio::test]
async fn a_settlements_instance_time_is_counted_up_to_when_it_was_settled() {
    // 1 × ml.m5.xlarge on an async endpoint, $0.23/h. A settlement's receipt is
    // dated at its submission, its latency the model's processing; its accrual
    // runs to when it was settled. S1 is settled at 11-28 00:00 (counting starts
    // there); S2, submitted 21:55 and processed in 300 s, at 22:00: +22 h × 0.23
    // = 5.06; S3, submitted 23:00 and processed in 600 s, at 11-29 08:00: +10 h ×
    // 0.23 = 2.30, of which 22:00 to 24:00, 2 h × 0.23 = 0.46, is 11-28's.
    // 11-28 accrued 5.06 + 0.46 = 5.52 = 24 h × 0.23, what AWS bills.
    let settlement = |id: &str,
                      at: &str,
                      latency_s: u64,
                      compute: (&str, &str),
                      accrued: &str,
                      allocated: &str,
                      settled: &str| {
        let (hours, usd) = compute;
        let cost: crate::billing::Cost = serde_json::from_value(serde_json::json!({
            "call_id": id, "at": at, "endpoint": "rt", "variant": "AllTraffic",
            "billing": {"kind": "instance", "instance_type": "ml.m5.xlarge", "instance_count": 1},
            "allocation": "processor_sharing",
            "usage": {"operation": "InvokeEndpointAsync", "latency_us": latency_s * 1_000_000,
                      "bytes_in": 0, "bytes_out": 0, "variant": "AllTraffic", "outcome": "ok"},
            "lines": [{"item": "compute", "quantity": hours, "unit": "instance_hours",
                "price": {"status": "priced", "usd_per_unit": "0.23", "cost_usd": usd,
                          "provenance": {"source": "live", "sku": null, "effective_date": null,
                                         "fetched_at": null, "note": null}}}],
            "cost_usd": usd, "currency": "USD", "region": "us-east-1",
            "running_client_usd": "0", "running_endpoint_usd": "0",
            "accrual": {"accrued_usd": accrued, "allocated_usd": allocated, "utilisation": null,
                        "accrued_to": settled}
        }))
        .unwrap();
        cost
    };
    // Each settlement bills its processing time: 300 s × 0.23 ÷ 3,600 =
    // 0.019166666667 (rounded to 10⁻¹²), 600 s: 0.038333333333.
    let metered = ledger([
        settlement(
            "s1",
            "2026-11-27T23:00:00Z",
            60,
            ("0.0166666667", "0.003833333333"),
            "1",
            "0.5",
            "2026-11-28T00:00:00Z",
        ),
        settlement(
            "s2",
            "2026-11-28T21:55:00Z",
            300,
            ("0.0833333333", "0.019166666667"),
            "6.06",
            "0.519166666667",
            "2026-11-28T22:00:00Z",
        ),
        settlement(
            "s3",
            "2026-11-28T23:00:00Z",
            600,
            ("0.1666666667", "0.038333333333"),
            "8.36",
            "0.5575",
            "2026-11-29T08:00:00Z",
        ),
    ]);
    let bill = billed_days(&[(
        "2026-11-28",
        false,
        "USE1-AsyncInf:ml.m5.xlarge",
        "5.52",
        "24",
    )]);
    let since = NaiveDate::from_ymd_opt(2026, 11, 28).unwrap();
    let options = ReconcileOptions::new(since, since + chrono::Days::new(1));
    let r = account(&[], &[], &[&bill])
        .reconcile(&metered, &options)
        .await
        .unwrap();
    let row = &r.rows[0];
    // Metered 0.019166666667 + 0.038333333333 = 0.0575, allocated as much; idle
    // 5.52 − 0.0575 = 5.4625; nothing outside (24 h × 0.23 = 5.52 = 0.0575 +
    // 5.4625), nothing unexplained.
    assert_eq!(row.group, "AsyncInf:ml.m5.xlarge");
    assert_eq!(row.metered_usd, Decimal::new(575, 4));
    assert_eq!(row.parts.idle_instance_usd, Decimal::new(54625, 4));
    assert_eq!(row.parts.outside_usd, Decimal::ZERO);
    assert_eq!(row.parts.unexplained_usd, Decimal::ZERO);
    assert_eq!(r.days[0].verdict, Verdict::Explained);
}

#[tokio::test]
async fn a_settlement_ranks_by_when_its_price_was_looked_up_not_its_submission() {
    // 1 × ml.g5.xlarge on an async endpoint, $1.408/h; AWS cuts it to $1.20/h
    // effective 11-29 00:00 UTC and bills 11-28 all day at the old rate: 24 h ×
    // 1.408 = $33.792. A settlement's receipt is dated at its submission, but its
    // lines are priced when it is settled (the meter looks its price up then).
    //   s0 submitted 11-27 23:45, 900 s, settled 11-28 00:00: counting starts
    //      (accrued 1, allocated 0.5).
    //   s1 submitted 11-28 09:45, 900 s, settled 10:00 at 1.408: 0.25 h × 1.408 =
    //      0.352; accrued + 10 h × 1.408 = 14.08 → 15.08; allocated 0.852.
    //   s2 submitted 11-28 23:30, 900 s, settled 11-29 07:00, when the meter's
    //      refreshed price is 1.20: 0.25 h × 1.2 = 0.30; the accrual ran at the
    //      cached 1.408 until then: + 21 h × 1.408 = 29.568 → 44.648, 14 h of it
    //      (19.712) on 11-28; allocated 1.152.
    // 11-28: metered (filed on the submission day) 0.352 + 0.30 = 0.652, allocated
    // as much; accrued 14.08 + 19.712 = 33.792 = 24 × 1.408; idle 33.14.
    // s2 is 11-28's latest receipt by `at`, but its rate is 11-29's: the day is
    // valued at s1's 1.408, Q × r = 24 × 1.408 = 33.792 = billed: no discount,
    // ratio 1, nothing outside or unexplained. (Ranked by submission, r = 1.20:
    // Q × r = 28.80, a +4.992 "discount" and ratio 1.1733.)
    let settlement = |id: &str,
                      at: &str,
                      rate: &str,
                      usd: &str,
                      accrued: &str,
                      allocated: &str,
                      settled: &str| {
        let cost: crate::billing::Cost = serde_json::from_value(serde_json::json!({
            "call_id": id, "at": at, "endpoint": "rt", "variant": "AllTraffic",
            "billing": {"kind": "instance", "instance_type": "ml.g5.xlarge", "instance_count": 1},
            "allocation": "processor_sharing",
            "usage": {"operation": "InvokeEndpointAsync", "latency_us": 900_000_000u64,
                      "bytes_in": 0, "bytes_out": 0, "variant": "AllTraffic", "outcome": "ok"},
            "lines": [priced_hours("0.25", rate, usd)],
            "cost_usd": usd, "currency": "USD", "region": "us-east-1",
            "running_client_usd": "0", "running_endpoint_usd": "0",
            "accrual": {"accrued_usd": accrued, "allocated_usd": allocated, "utilisation": null,
                        "accrued_to": settled}
        }))
        .unwrap();
        cost
    };
    let metered = ledger([
        settlement(
            "s0",
            "2026-11-27T23:45:00Z",
            "1.408",
            "0.352",
            "1",
            "0.5",
            "2026-11-28T00:00:00Z",
        ),
        settlement(
            "s1",
            "2026-11-28T09:45:00Z",
            "1.408",
            "0.352",
            "15.08",
            "0.852",
            "2026-11-28T10:00:00Z",
        ),
        settlement(
            "s2",
            "2026-11-28T23:30:00Z",
            "1.2",
            "0.3",
            "44.648",
            "1.152",
            "2026-11-29T07:00:00Z",
        ),
    ]);
    let bill = billed_days(&[(
        "2026-11-28",
        false,
        "USE1-AsyncInf:ml.g5.xlarge",
        "33.792",
        "24",
    )]);
    let since = NaiveDate::from_ymd_opt(2026, 11, 28).unwrap();
    let options = ReconcileOptions::new(since, since + chrono::Days::new(1));
    let r = account(&[], &[], &[&bill])
        .reconcile(&metered, &options)
        .await
        .unwrap();
    let d = |text: &str| text.parse::<Decimal>().unwrap();
    let row = row(&r, "AsyncInf:ml.g5.xlarge");
    assert_eq!(row.metered_usd, d("0.652"));
    assert_eq!(row.parts.idle_instance_usd, d("33.14"));
    assert_eq!(row.effective_rate_ratio, Some(Decimal::ONE));
    assert_eq!(row.parts.discount_usd, Decimal::ZERO);
    assert_eq!(row.parts.outside_usd, Decimal::ZERO);
    assert_eq!(row.parts.unexplained_usd, Decimal::ZERO);
    assert_eq!(r.days[0].verdict, Verdict::Explained);
}

#[tokio::test]
async fn a_shadow_variants_instance_time_is_filed_under_its_own_instance_type() {
    // `rt` serves from 1 × ml.g5.xlarge ($1.408/h) and shadows to 1 ×
    // ml.g5.12xlarge ($7.09/h): the accrual pays for both, $8.498/h, and AWS
    // bills each under its own usage type. Allocation amortised: the second
    // call's compute line carries both instances over the 24 h between the
    // calls' ends (11-29 00:00 to 11-30 00:00) at their average rate, 48
    // instance-hours × (8.498 ÷ 2 = 4.249) = 203.952, and the accrual grows by as
    // much: 24 × 1.408 = 33.792 of it the served variant's, 24 × 7.09 = 170.16
    // the shadow's.
    let parts = standing(&[("ml.g5.xlarge", 1, "1.408"), ("ml.g5.12xlarge", 1, "7.09")]);
    let metered = ledger([
        amortized_receipt(
            "a",
            "2026-11-28T23:59:59Z",
            1,
            "ml.g5.xlarge",
            ("0.01", "4.249", "0.04249"),
            "10",
            parts.clone(),
        ),
        amortized_receipt(
            "b",
            "2026-11-29T23:59:59Z",
            1,
            "ml.g5.xlarge",
            ("48", "4.249", "203.952"),
            "213.952",
            parts,
        ),
    ]);
    // Each instance type's row is metered as billed, at its own rate: 24 h
    // of it, none idle, no discount, nothing outside or unexplained.
    g5_and_its_shadow_metered_as_billed(&metered).await;
}

#[tokio::test]
async fn where_counting_starts_a_shadows_instance_time_is_filed_under_its_own_type_and_rate() {
    // As above, 1 × ml.g5.xlarge ($1.408/h) shadowed to 1 × ml.g5.12xlarge
    // ($7.09/h), $8.498/h in all, amortised; but the ledger's first receipt is of
    // the day reconciled (a rolling ledger's older files removed): counting
    // starts with receipt a, from 11-29 00:00:00 for 36 s (0.01 h). Its compute
    // line carries both instances' 0.01 h, 0.02 instance-hours at their average
    // rate 4.249 = 0.08498: 0.01 × 1.408 = 0.01408 of it the served variant's,
    // 0.01 × 7.09 = 0.0709 the shadow's. Receipt b's ends 11-30 00:00: 23.99 h
    // since a's end, 47.98 instance-hours × 4.249 = 203.86702, the accrual
    // growing by as much: 23.99 × 1.408 = 33.77792 and 23.99 × 7.09 = 170.0891.
    // Each type's day: 0.01 + 23.99 = 24 h, 0.01408 + 33.77792 = 33.792 and
    // 0.0709 + 170.0891 = 170.16, what AWS bills.
    let parts = standing(&[("ml.g5.xlarge", 1, "1.408"), ("ml.g5.12xlarge", 1, "7.09")]);
    let metered = ledger([
        amortized_receipt(
            "a",
            "2026-11-29T00:00:00Z",
            36,
            "ml.g5.xlarge",
            ("0.02", "4.249", "0.08498"),
            "10",
            parts.clone(),
        ),
        amortized_receipt(
            "b",
            "2026-11-29T23:59:59Z",
            1,
            "ml.g5.xlarge",
            ("47.98", "4.249", "203.86702"),
            "213.86702",
            parts,
        ),
    ]);
    // Each type metered as billed, at its own rate (not the average 4.249, which
    // would make the g5's on-demand 24 × 4.249 = 101.976 and a discount of
    // 33.792 − 101.976 = −68.184): no discount, nothing outside or unexplained.
    g5_and_its_shadow_metered_as_billed(&metered).await;
}

/// Reconciles `metered` against 11-29's bill of 24 h of 1 × ml.g5.xlarge
/// (24 × 1.408 = $33.792) and of its 1 × ml.g5.12xlarge shadow (24 × 7.09 =
/// $170.16), and asserts each type's row metered as billed, at its own rate:
/// none idle, no discount, nothing outside or unexplained; the day agrees.
async fn g5_and_its_shadow_metered_as_billed(metered: &Metered) {
    let bill = billed_nov_29(&[
        ("USE1-Host:ml.g5.xlarge", "33.792", "24"),
        ("USE1-Host:ml.g5.12xlarge", "170.16", "24"),
    ]);
    let r = reconcile_nov_29(metered, &bill).await.unwrap();
    for (class, usd) in [
        ("Host:ml.g5.12xlarge", Decimal::new(17016, 2)),
        ("Host:ml.g5.xlarge", Decimal::new(33792, 3)),
    ] {
        let row = row(&r, class);
        assert_eq!(row.metered_usd, usd, "{row:?}");
        assert_eq!(row.metered_quantity, Some(Decimal::from(24)), "{row:?}");
        assert_eq!(row.effective_rate_ratio, Some(Decimal::ONE), "{row:?}");
        assert_eq!(row.parts, Parts::default(), "{row:?}");
    }
    assert_eq!(r.days[0].verdict, Verdict::Agrees);
}

#[tokio::test]
async fn a_shadows_instance_time_beside_an_unpriced_variant_is_filed_under_the_shadows_type() {
    // `rt` serves from 1 × ml.unpriced.xlarge, a type no price source knows, and
    // shadows to 1 × ml.g5.xlarge ($1.408/h). The variant's own rate is unknown:
    // its accrual carries the shadow alone (its one standing part), and its
    // amortised compute line is the shadow's time. Counting starts at 11-29
    // 00:00 (receipt a's end); receipt b's ends 11-30 00:00: 24 instance-hours
    // of the shadow × 1.408 = 33.792, the accrual growing by as much.
    let shadow_only = standing(&[("ml.g5.xlarge", 1, "1.408")]);
    let metered = ledger([
        amortized_receipt(
            "a",
            "2026-11-28T23:59:59Z",
            1,
            "ml.unpriced.xlarge",
            ("0.01", "1.408", "0.01408"),
            "10",
            shadow_only.clone(),
        ),
        amortized_receipt(
            "b",
            "2026-11-29T23:59:59Z",
            1,
            "ml.unpriced.xlarge",
            ("24", "1.408", "33.792"),
            "43.792",
            shadow_only,
        ),
    ]);
    // AWS bills the shadow's 24 h × 1.408 = 33.792 under Host:ml.g5.xlarge, and
    // the served variant's 24 h under its own type, at its real rate (say $2/h,
    // which no source here knows): 24 × 2 = 48.
    let bill = billed_nov_29(&[
        ("USE1-Host:ml.g5.xlarge", "33.792", "24"),
        ("USE1-Host:ml.unpriced.xlarge", "48", "24"),
    ]);
    let r = reconcile_nov_29(&metered, &bill).await.unwrap();
    // The shadow's type is metered as billed: 33.792 for 24 h, nothing idle,
    // outside, discounted or unexplained.
    let g5 = row(&r, "Host:ml.g5.xlarge");
    assert_eq!(g5.metered_usd, Decimal::new(33792, 3), "{g5:?}");
    assert_eq!(g5.metered_quantity, Some(Decimal::from(24)), "{g5:?}");
    assert_eq!(g5.parts, Parts::default(), "{g5:?}");
    // The served variant's type has no priced receipt and no known rate: none of
    // the shadow's time or rate (1.408 would make 24 × 1.408 = 33.792 its
    // on-demand cost and 48 − 33.792 a surcharge); its whole bill, $48, is
    // unexplained, no discount or usage outside sagemeter made up.
    let own = row(&r, "Host:ml.unpriced.xlarge");
    assert_eq!(own.metered_usd, Decimal::ZERO, "{own:?}");
    assert_eq!(own.parts.discount_usd, Decimal::ZERO, "{own:?}");
    assert_eq!(own.parts.outside_usd, Decimal::ZERO, "{own:?}");
    assert_eq!(own.parts.unexplained_usd, Decimal::from(48), "{own:?}");
}

/// An amortised receipt of `rt` on `count` × `instance_type`, its call ending 1 s
/// after `at`, with compute `lines` (JSON), its accrual `accrued` (all of it
/// allocated) paying for `standing_parts` (JSON, empty: its own alone).
fn amortized_lines_receipt(
    id: &str,
    at: &str,
    (instance_type, count): (&str, u32),
    lines: serde_json::Value,
    accrued: &str,
    standing_parts: serde_json::Value,
) -> crate::billing::Cost {
    serde_json::from_value(serde_json::json!({
        "call_id": id, "at": at, "endpoint": "rt", "variant": "AllTraffic",
        "billing": {"kind": "instance", "instance_type": instance_type, "instance_count": count},
        "allocation": "amortized",
        "usage": {"operation": "InvokeEndpoint", "latency_us": 1_000_000,
                  "bytes_in": 0, "bytes_out": 0, "variant": "AllTraffic", "outcome": "ok"},
        "lines": lines, "cost_usd": "0", "currency": "USD", "region": "us-east-1",
        "running_client_usd": "0", "running_endpoint_usd": "0",
        "accrual": {"accrued_usd": accrued, "allocated_usd": accrued, "utilisation": "1",
                    "standing_parts": standing_parts}
    }))
    .unwrap()
}

/// An accrual's standing parts (JSON): `(instance type, instances, USD an hour
/// for them all)` each.
fn standing(parts: &[(&str, u32, &str)]) -> serde_json::Value {
    parts
        .iter()
        .map(|(instance_type, count, usd)| {
            serde_json::json!({"billing": {"kind": "instance", "instance_type": instance_type,
                                           "instance_count": count},
                               "usd_per_hour": usd})
        })
        .collect()
}

/// A priced compute line (JSON) of `hours` instance-hours at `rate` costing `usd`.
fn priced_hours(hours: &str, rate: &str, usd: &str) -> serde_json::Value {
    serde_json::json!({"item": "compute", "quantity": hours, "unit": "instance_hours",
        "price": {"status": "priced", "usd_per_unit": rate, "cost_usd": usd,
                  "provenance": {"source": "live", "sku": null, "effective_date": null,
                                 "fetched_at": null, "note": null}}})
}

/// A compute line (JSON) of `hours` instance-hours costing `usd` at the
/// ml.g5.xlarge rate of $1.20/h in force from 2026-11-29 00:00 (SKU `G5XL`),
/// fetched live at `fetched_at`.
fn g5_at_1_20(hours: &str, usd: &str, fetched_at: &str) -> serde_json::Value {
    serde_json::json!({"item": "compute", "quantity": hours, "unit": "instance_hours",
        "price": {"status": "priced", "usd_per_unit": "1.2", "cost_usd": usd,
                  "provenance": {"source": "live", "sku": "G5XL",
                                 "effective_date": "2026-11-29T00:00:00Z",
                                 "fetched_at": fetched_at, "note": null}}})
}

/// An unpriced compute line (JSON) of `hours` instance-hours of ml.unpriced.xlarge.
fn unpriced_hours(hours: &str) -> serde_json::Value {
    serde_json::json!({"item": "compute", "quantity": hours, "unit": "instance_hours",
        "price": {"status": "unpriced", "reason": "no rate for ml.unpriced.xlarge"}})
}

#[tokio::test]
async fn a_variant_back_up_on_an_unpriced_type_files_its_earlier_priced_time_under_that_type() {
    // `rt` serves from 2 × ml.g5.xlarge ($1.408/h) without a shadow, amortised.
    // Counting starts with receipt a (11-28, on the g5s). On 11-29 the variant
    // stands on 2 × g5 until 00:15, at 0 instances until 00:30, then on 1 ×
    // ml.unpriced.xlarge, a type no price source knows. Receipt b's call ends at
    // 01:00: its priced compute line is the g5s' 2 × 0.25 h = 0.5 instance-hours
    // × 1.408 = 0.704 (the accrual grows by as much), and an unpriced one the
    // new type's 0.5 instance-hours; its accrual has no standing part (nothing
    // of a known rate stands beside the variant).
    let metered = ledger([
        amortized_lines_receipt(
            "a",
            "2026-11-28T23:59:59Z",
            ("ml.g5.xlarge", 2),
            serde_json::json!([priced_hours("0.01", "1.408", "0.01408")]),
            "10",
            serde_json::json!([]),
        ),
        amortized_lines_receipt(
            "b",
            "2026-11-29T00:59:59Z",
            ("ml.unpriced.xlarge", 1),
            serde_json::json!([priced_hours("0.5", "1.408", "0.704"), unpriced_hours("0.5")]),
            "10.704",
            serde_json::json!([]),
        ),
    ]);
    // AWS bills the g5s' 0.5 h × 1.408 = 0.704 under Host:ml.g5.xlarge, and
    // the new type's 0.5 h (to 01:00) at its real rate (say $2/h, which no source
    // here knows): 0.5 × 2 = 1.
    let bill = billed_nov_29(&[
        ("USE1-Host:ml.g5.xlarge", "0.704", "0.5"),
        ("USE1-Host:ml.unpriced.xlarge", "1", "0.5"),
    ]);
    let r = reconcile_nov_29(&metered, &bill).await.unwrap();
    // The g5s' time is metered under their type, as billed: 0.704 for 0.5 h,
    // at 1.408: nothing idle, outside, discounted or unexplained.
    let g5 = row(&r, "Host:ml.g5.xlarge");
    assert_eq!(g5.metered_usd, Decimal::new(704, 3), "{g5:?}");
    assert_eq!(g5.metered_quantity, Some(Decimal::new(5, 1)), "{g5:?}");
    assert_eq!(g5.parts, Parts::default(), "{g5:?}");
    // The new type has no priced receipt and no known rate: 1.408 would make
    // its on-demand 0.5 × 1.408 = 0.704 and 1 − 0.704 a surcharge; its whole
    // bill, $1, is unexplained.
    let own = row(&r, "Host:ml.unpriced.xlarge");
    assert_eq!(own.metered_usd, Decimal::ZERO, "{own:?}");
    assert_eq!(own.parts.discount_usd, Decimal::ZERO, "{own:?}");
    assert_eq!(own.parts.outside_usd, Decimal::ZERO, "{own:?}");
    assert_eq!(own.parts.unexplained_usd, Decimal::ONE, "{own:?}");
}

/// Receipts a and b of `rt` on 2 × ml.g5.xlarge ($1.408/h) shadowed to 1 ×
/// ml.g5.12xlarge ($7.09/h), amortised: 2 × 1.408 + 7.09 = $9.906/h over 3
/// instances, 3.302 an instance-hour on average. Counting starts with receipt a
/// (11-28, ending 11-29 00:00). On 11-29 the variant stands on the g5s until
/// 00:15, at 0 instances until 00:30, then on 1 × ml.unpriced.xlarge, a type
/// no price source knows; the shadow stands on. Receipt b's call ends at 01:00.
/// Its compute lines, one per rate the accrual ran at since a's end:
/// - to 00:15, all 3 instances: 3 × 0.25 h = 0.75 instance-hours × 3.302 =
///   2.4765 (the g5s' 2 × 0.25 × 1.408 = 0.704 and the shadow's 0.25 × 7.09 =
///   1.7725);
/// - from 00:15, the shadow alone (the variant's own at 0, then unpriced): 0.75
///   instance-hours × 7.09 = 5.3175;
/// - unpriced, the new type's 1 × 0.5 h.
///
/// The accrual grows by 2.4765 + 5.3175 = 7.794, to 17.794, and b's standing
/// parts are the shadow's alone (the variant's own rate unknown).
fn g5s_shadowed_then_back_up_on_an_unpriced_type() -> [crate::billing::Cost; 2] {
    let both = standing(&[("ml.g5.xlarge", 2, "2.816"), ("ml.g5.12xlarge", 1, "7.09")]);
    [
        amortized_lines_receipt(
            "a",
            "2026-11-28T23:59:59Z",
            ("ml.g5.xlarge", 2),
            serde_json::json!([priced_hours("0.03", "3.302", "0.09906")]),
            "10",
            both,
        ),
        amortized_lines_receipt(
            "b",
            "2026-11-29T00:59:59Z",
            ("ml.unpriced.xlarge", 1),
            serde_json::json!([
                priced_hours("0.75", "3.302", "2.4765"),
                priced_hours("0.75", "7.09", "5.3175"),
                unpriced_hours("0.5"),
            ]),
            "17.794",
            standing(&[("ml.g5.12xlarge", 1, "7.09")]),
        ),
    ]
}

#[tokio::test]
async fn back_up_on_an_unpriced_type_beside_a_shadow_each_type_is_filed_at_its_own_rate() {
    // Receipts a and b as `g5s_shadowed_then_back_up_on_an_unpriced_type`
    // says: the g5s' 0.704 for 0.5 h and the shadow's 1.7725 + 5.3175 = 7.09
    // for 1 h to 01:00.
    let [a, b] = g5s_shadowed_then_back_up_on_an_unpriced_type();
    let metered = ledger([
        a,
        b,
        // At 02:00 a price refresh moves ml.g5.12xlarge to $7.50/h. Receipt c's
        // call ends at 03:00: 1 instance-hour at 7.09 (01:00 to 02:00) and 1 at
        // 7.50 (02:00 to 03:00), the new type's 2 h unpriced. Both priced
        // lines are the shadow's: the second's rate is not the earlier parts'
        // 3.302 though it is not the standing 7.09 either.
        amortized_lines_receipt(
            "c",
            "2026-11-29T02:59:59Z",
            ("ml.unpriced.xlarge", 1),
            serde_json::json!([
                priced_hours("1", "7.09", "7.09"),
                priced_hours("1", "7.5", "7.5"),
                unpriced_hours("2"),
            ]),
            "32.384",
            standing(&[("ml.g5.12xlarge", 1, "7.5")]),
        ),
    ]);
    // AWS bills the g5s' 2 × 0.25 h = 0.5 h × 1.408 = 0.704 under
    // Host:ml.g5.xlarge, the shadow's 3 h (00:00 to 03:00), 2 × 7.09 + 7.50 =
    // 21.68, under Host:ml.g5.12xlarge, and the new type's 2.5 h at its real
    // rate (say $2/h, which no source here knows): 2.5 × 2 = 5.
    let bill = billed_nov_29(&[
        ("USE1-Host:ml.g5.xlarge", "0.704", "0.5"),
        ("USE1-Host:ml.g5.12xlarge", "21.68", "3"),
        ("USE1-Host:ml.unpriced.xlarge", "5", "2.5"),
    ]);
    let r = reconcile_nov_29(&metered, &bill).await.unwrap();
    // Each priced type is metered as billed: the g5s' 0.704 for 0.5 h at
    // 1.408, nothing idle, outside, discounted or unexplained (the whole 7.794
    // of b under the shadow's type would leave the g5s' 0.704 outside
    // sagemeter); the shadow's 1.7725 + 5.3175 + 7.09 + 7.50 = 21.68 for 0.25
    // + 0.75 + 1 + 1 = 3 h (c's 7.50 line taken for the earlier parts' time
    // would file 2.0155 of it under the g5s). The shadow's row is not judged
    // at one rate: the day ran at two.
    let g5 = row(&r, "Host:ml.g5.xlarge");
    assert_eq!(g5.metered_usd, Decimal::new(704, 3), "{g5:?}");
    assert_eq!(g5.metered_quantity, Some(Decimal::new(5, 1)), "{g5:?}");
    assert_eq!(g5.effective_rate_ratio, Some(Decimal::ONE), "{g5:?}");
    assert_eq!(g5.parts, Parts::default(), "{g5:?}");
    let shadow = row(&r, "Host:ml.g5.12xlarge");
    assert_eq!(shadow.metered_usd, Decimal::new(2168, 2), "{shadow:?}");
    assert_eq!(
        shadow.metered_quantity,
        Some(Decimal::from(3)),
        "{shadow:?}"
    );
    // The new type has no priced receipt and no known rate: nothing of the
    // others' is filed under it, not even what rounding their shares leaves
    // (the hours' 1/3 and 2/3 at 20 places), and its whole bill, $5, is
    // unexplained.
    let own = row(&r, "Host:ml.unpriced.xlarge");
    assert_eq!(own.metered_usd, Decimal::ZERO, "{own:?}");
    assert_eq!(own.metered_quantity, Some(Decimal::ZERO), "{own:?}");
    assert_eq!(own.parts.discount_usd, Decimal::ZERO, "{own:?}");
    assert_eq!(own.parts.outside_usd, Decimal::ZERO, "{own:?}");
    assert_eq!(own.parts.unexplained_usd, Decimal::from(5), "{own:?}");
}

#[tokio::test]
async fn a_shadow_ended_beside_an_unpriced_type_keeps_its_last_time_under_its_own_type() {
    // Receipts a and b as `g5s_shadowed_then_back_up_on_an_unpriced_type`
    // says: to 01:00 the g5s' 0.704 for 0.5 h and the shadow's 1.7725 + 5.3175
    // = 7.09 for 1 h. The shadow variant is removed at 01:30. Receipt c's call
    // ends at 02:00: its priced compute line is the shadow's 01:00 to 01:30,
    // 0.5 instance-hours × 7.09 = 3.545 (the accrual grows by as much, to
    // 17.794 + 3.545 = 21.339), its unpriced one the new type's 1 × 1 h; its
    // accrual has no standing part left (nothing of a known rate stands).
    let [a, b] = g5s_shadowed_then_back_up_on_an_unpriced_type();
    let c = amortized_lines_receipt(
        "c",
        "2026-11-29T01:59:59Z",
        ("ml.unpriced.xlarge", 1),
        serde_json::json!([priced_hours("0.5", "7.09", "3.545"), unpriced_hours("1")]),
        "21.339",
        serde_json::json!([]),
    );
    let metered = ledger([a, b, c]);
    // AWS bills the g5s' 2 × 0.25 h = 0.5 h × 1.408 = 0.704 under
    // Host:ml.g5.xlarge, the shadow's 1.5 h (00:00 to 01:30) × 7.09 = 10.635
    // under Host:ml.g5.12xlarge, and the new type's 1.5 h (00:30 to 02:00) at
    // its real rate (say $2/h, which no source here knows): 1.5 × 2 = 3.
    let bill = billed_nov_29(&[
        ("USE1-Host:ml.g5.xlarge", "0.704", "0.5"),
        ("USE1-Host:ml.g5.12xlarge", "10.635", "1.5"),
        ("USE1-Host:ml.unpriced.xlarge", "3", "1.5"),
    ]);
    let r = reconcile_nov_29(&metered, &bill).await.unwrap();
    // c's 3.545 for 0.5 h is the shadow's, the parts b stood on: the shadow's
    // row is 7.09 + 3.545 = 10.635 for 1 + 0.5 = 1.5 h, the g5s' 0.704 + 0 for
    // 0.5 h, each as billed, nothing idle, outside, discounted or
    // unexplained. (Shared as the parts a stood on, 2.816 : 7.09, c's line
    // would file 3.545 × 2.816 ÷ 9.906 = 1.0077… and 2 ÷ 3 × 0.5 = 0.333… h
    // under the g5s, gone by then: −1.0077… unexplained on their row, as much
    // outside sagemeter on the shadow's.)
    let g5 = row(&r, "Host:ml.g5.xlarge");
    assert_eq!(g5.metered_usd, Decimal::new(704, 3), "{g5:?}");
    assert_eq!(g5.metered_quantity, Some(Decimal::new(5, 1)), "{g5:?}");
    assert_eq!(g5.parts, Parts::default(), "{g5:?}");
    let shadow = row(&r, "Host:ml.g5.12xlarge");
    assert_eq!(shadow.metered_usd, Decimal::new(10635, 3), "{shadow:?}");
    assert_eq!(
        shadow.metered_quantity,
        Some(Decimal::new(15, 1)),
        "{shadow:?}"
    );
    assert_eq!(
        shadow.effective_rate_ratio,
        Some(Decimal::ONE),
        "{shadow:?}"
    );
    assert_eq!(shadow.parts, Parts::default(), "{shadow:?}");
    // The new type: nothing of the others' filed under it, its whole bill, $3,
    // unexplained (no rate of it is known).
    let own = row(&r, "Host:ml.unpriced.xlarge");
    assert_eq!(own.metered_usd, Decimal::ZERO, "{own:?}");
    assert_eq!(own.metered_quantity, Some(Decimal::ZERO), "{own:?}");
    assert_eq!(own.parts.unexplained_usd, Decimal::from(3), "{own:?}");
}

#[tokio::test]
async fn an_estimated_day_is_judged_once_its_usage_is_in_not_when_the_month_closes() {
    // Cost Explorer marks every day of a month whose bill is not final
    // `Estimated`. Now is 2026-12-02 12:00 UTC: 11-29 ended 60 h ago (judged),
    // 11-30 36 h ago and 12-01 12 h ago (their usage may still be coming in).
    let bill = billed_days(&[
        ("2026-11-29", true, "USE1-Host:ml.m5.xlarge", "5.52", "24"),
        ("2026-11-30", true, "USE1-Host:ml.m5.xlarge", "5.52", "24"),
        ("2026-12-01", true, "USE1-Host:ml.m5.xlarge", "5.52", "24"),
    ]);
    let since = NaiveDate::from_ymd_opt(2026, 11, 29).unwrap();
    let options = ReconcileOptions::new(since, since + chrono::Days::new(3));
    let r = account(&[], &[], &[&bill])
        .reconcile(&Metered::new("us-east-1"), &options)
        .await
        .unwrap();
    // Nothing metered: 24 h × $0.23 = $5.52 is all outside sagemeter, explained.
    assert_eq!(r.days[0].parts.outside_usd, Decimal::new(552, 2));
    assert_eq!(r.days[0].verdict, Verdict::Explained);
    assert!(r.days[0].estimated);
    assert_eq!(r.days[1].verdict, Verdict::NotSettled);
    assert_eq!(r.days[2].verdict, Verdict::NotSettled);
    assert!(
        r.notes.iter().any(|n| n.starts_with(
            "judged though Cost Explorer still marks them estimated (the month's bill is not \
             final): 2026-11-29;"
        )),
        "{:?}",
        r.notes
    );
}

#[tokio::test]
async fn unexplained_amounts_of_opposite_sign_do_not_cancel_in_the_days_verdict() {
    // One process metering `rt` (one ml.m5.xlarge, $0.23/h): its first receipt
    // starts the accrual's count (0.1), its second has accrued 2.1 and allocated
    // 0.6 since: 2.0 accrued, 0.5 allocated, idle 1.5. Compute lines 0.25 + 0.25
    // = 0.50; the second call's data out is metered at $501 (31,312.5 GB × $0.016).
    let receipt = |id: &str, at: &str, lines: serde_json::Value, accrued: &str, allocated: &str| {
        let cost: crate::billing::Cost = serde_json::from_value(serde_json::json!({
            "call_id": id, "at": at, "endpoint": "rt", "variant": "AllTraffic",
            "billing": {"kind": "instance", "instance_type": "ml.m5.xlarge", "instance_count": 1},
            "allocation": "processor_sharing",
            "usage": {"operation": "InvokeEndpoint", "latency_us": 1000, "bytes_in": 0,
                      "bytes_out": 0, "variant": "AllTraffic", "outcome": "ok"},
            "lines": lines, "cost_usd": "0", "currency": "USD", "region": "us-east-1",
            "running_client_usd": "0", "running_endpoint_usd": "0",
            "accrual": {"accrued_usd": accrued, "allocated_usd": allocated, "utilisation": null}
        }))
        .unwrap();
        cost
    };
    let line = |item: &str, quantity: &str, unit: &str, rate: &str, usd: &str| {
        serde_json::json!({"item": item, "quantity": quantity, "unit": unit,
            "price": {"status": "priced", "usd_per_unit": rate, "cost_usd": usd,
                      "provenance": {"source": "live", "sku": null, "effective_date": null,
                                     "fetched_at": null, "note": null}}})
    };
    let compute = line("compute", "1.0869565217", "instance_hours", "0.23", "0.25");
    let metered = ledger([
        receipt(
            "a",
            "2026-11-29T10:00:00Z",
            serde_json::json!([compute]),
            "0.1",
            "0.1",
        ),
        receipt(
            "b",
            "2026-11-29T18:00:00Z",
            serde_json::json!([
                compute,
                line("data_out", "31312.5", "gigabytes", "0.016", "501")
            ]),
            "2.1",
            "0.6",
        ),
    ]);
    // Host:ml.m5.xlarge: 48 h × $0.23 = $11.04 billed, metered 0.50, idle 1.50,
    // outside 11.04 − 2.00 = 9.04, unexplained 0. Host:ml.zz9.large: $500, no rate
    // known, nothing metered: unexplained +500. Data out: $1.00 billed (62.5 GB ×
    // $0.016), $501 metered: unexplained 1.00 − 501 = −500.
    let bill = one_billed_day(&[
        (
            "USE1-Host:ml.m5.xlarge",
            &[
                ("AmortizedCost", "11.04", "USD"),
                ("UsageQuantity", "48", "Hrs"),
            ],
        ),
        (
            "USE1-Host:ml.zz9.large",
            &[
                ("AmortizedCost", "500", "USD"),
                ("UsageQuantity", "48", "Hrs"),
            ],
        ),
        (
            "USE1-Hst:Data-Bytes-Out",
            &[
                ("AmortizedCost", "1.00", "USD"),
                ("UsageQuantity", "62.5", "GB"),
            ],
        ),
    ]);
    let r = reconcile_nov_29(&metered, &bill).await.unwrap();
    let host = row(&r, "Host:ml.m5.xlarge");
    assert_eq!(host.metered_usd, Decimal::new(50, 2));
    assert_eq!(host.parts.idle_instance_usd, Decimal::new(15, 1));
    assert_eq!(host.parts.outside_usd, Decimal::new(904, 2));
    assert_eq!(host.parts.unexplained_usd, Decimal::ZERO);
    assert_eq!(
        row(&r, "Host:ml.zz9.large").parts.unexplained_usd,
        Decimal::from(500)
    );
    assert_eq!(
        row(&r, "Hst:Data-Bytes-Out").parts.unexplained_usd,
        Decimal::from(-500)
    );
    let day = &r.days[0];
    // The signed sum is 0; $1,000 of it is unexplained all the same.
    assert_eq!(day.parts.unexplained_usd, Decimal::ZERO);
    assert_eq!(day.unexplained_gross_usd, Decimal::from(1000));
    assert_eq!(day.verdict, Verdict::Differs);
}

/// A receipt of endpoint `endpoint` (one ml.m5.xlarge) at 10:00 on 2026-11-29
/// with one priced line per `(item, unit, usd)`: a quantity of 1 at `usd` a unit.
fn lines_on_nov_29(id: &str, endpoint: &str, lines: &[(&str, &str, &str)]) -> crate::billing::Cost {
    let lines: Vec<_> = lines
        .iter()
        .map(|(item, unit, usd)| {
            serde_json::json!({"item": item, "quantity": "1", "unit": unit,
                "price": {"status": "priced", "usd_per_unit": usd, "cost_usd": usd,
                          "provenance": {"source": "live", "sku": null, "effective_date": null,
                                         "fetched_at": null, "note": null}}})
        })
        .collect();
    serde_json::from_value(serde_json::json!({
        "call_id": id, "at": "2026-11-29T10:00:00Z", "endpoint": endpoint,
        "variant": "AllTraffic",
        "billing": {"kind": "instance", "instance_type": "ml.m5.xlarge", "instance_count": 1},
        "allocation": "processor_sharing",
        "usage": {"operation": "InvokeEndpoint", "latency_us": 1000, "bytes_in": 0,
                  "bytes_out": 0, "variant": "AllTraffic", "outcome": "ok"},
        "lines": lines, "cost_usd": "0", "currency": "USD", "region": "us-east-1",
        "running_client_usd": "0", "running_endpoint_usd": "0"
    }))
    .unwrap()
}

/// 10¹² USD: the most a receipt's figure may be.
const TRILLION: &str = "1000000000000";
/// 10⁻¹⁷ USD.
const TEN_TO_MINUS_17: &str = "0.00000000000000001";

#[tokio::test]
async fn a_sum_of_endpoints_metered_cells_that_would_be_rounded_is_refused() {
    // rt-a meters 10¹² USD of ml.m5.xlarge time on 11-29, rt-b 10⁻¹⁷ USD: each
    // endpoint's cell is exact. Their row (Host:ml.m5.xlarge) would be
    // 1,000,000,000,000.00000000000000001: 13 + 17 = 30 digits, more than a
    // Decimal holds (10²⁹ + 1 > 2⁹⁶ − 1 ≈ 7.9 × 10²⁸), so adding them rounds to
    // 10¹² at 16 places, 10⁻¹⁷ short: refused instead, naming the sum.
    let metered = ledger(
        [("a", "rt-a", TRILLION), ("b", "rt-b", TEN_TO_MINUS_17)].map(|(id, endpoint, usd)| {
            lines_on_nov_29(id, endpoint, &[("compute", "instance_hours", usd)])
        }),
    );
    let bill = one_billed_day(&[]);
    let err = reconcile_nov_29(&metered, &bill).await.unwrap_err();
    match &err {
        AccountError::Invalid(message) => assert!(
            message.contains(
                "the metered cost of Host:ml.m5.xlarge on 2026-11-29, with rt-b's, added up \
                 exactly, needs more digits than a Decimal holds"
            ) && message.contains("hand-edited ledger?"),
            "{err}"
        ),
        other => panic!("not refused as a sum: {other:?}"),
    }
}

#[tokio::test]
async fn a_sum_of_a_tags_kinds_of_charge_that_would_be_rounded_is_refused() {
    // One receipt of rt (no tags): 10¹² USD of instance time and 10⁻¹⁷ USD of data
    // in, two kinds of charge, each exact. Grouped by a tag rt does not carry,
    // both are in the row `(untagged)`, whose metered cost would be the same
    // 30 digits as above: refused, not rounded 10⁻¹⁷ short.
    let cost = lines_on_nov_29(
        "a",
        "rt",
        &[
            ("compute", "instance_hours", TRILLION),
            ("data_in", "gigabytes", TEN_TO_MINUS_17),
        ],
    );
    let mut metered = Metered::new("us-east-1");
    metered.add("calls.jsonl", &cost).unwrap();
    let since = NaiveDate::from_ymd_opt(2026, 11, 29).unwrap();
    let options = ReconcileOptions::new(since, since + chrono::Days::new(1))
        .group_by(GroupBy::Tag("team".into()));
    // rt described without an ARN: no tags to list, so untagged.
    let described = mock!(aws_sdk_sagemaker::Client::describe_endpoint).then_output(|| {
        aws_sdk_sagemaker::operation::describe_endpoint::DescribeEndpointOutput::builder()
            .endpoint_name("rt")
            .build()
    });
    let bill = one_billed_day(&[]);
    let err = account(&[&described], &[], &[&bill])
        .reconcile(&metered, &options)
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains(
            "the metered cost of (untagged) on 2026-11-29, added up exactly, needs more \
             digits than a Decimal holds"
        ),
        "{err}"
    );
}

#[tokio::test]
async fn a_billed_sum_that_would_be_rounded_is_refused_naming_it() {
    // Cost Explorer bills two volume types on 11-29, both ML storage
    // (Host:VolumeUsage): 10¹² USD of gp2 (the most a group may carry) and 10⁻¹⁷
    // USD of gp3, each a Decimal. Their cell is 1,000,000,000,000.00000000000000001:
    // 13 + 17 = 30 digits, more than a Decimal holds (10²⁹ + 1 > 2⁹⁶ − 1 ≈ 7.9 ×
    // 10²⁸), so `+=` made it 10¹² at 16 places, 10⁻¹⁷ short, unsaid.
    let storage = one_billed_day(&[
        (
            "USE1-Host:VolumeUsage.gp2",
            &[
                ("AmortizedCost", TRILLION, "USD"),
                ("UsageQuantity", "1", "GB-Mo"),
            ],
        ),
        (
            "USE1-Host:VolumeUsage.gp3",
            &[
                ("AmortizedCost", TEN_TO_MINUS_17, "USD"),
                ("UsageQuantity", "1", "GB-Mo"),
            ],
        ),
    ]);
    let err = reconcile_nov_29(&Metered::new("us-east-1"), &storage)
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains(
            "the billed cost of Host:VolumeUsage on 2026-11-29, added up exactly, needs more \
             digits than a Decimal holds"
        ),
        "{err}"
    );
    // The same two amounts as two SageMaker charges of no endpoint (training and a
    // notebook), two rows each exact: the day's billed total is those 30 digits.
    let other = one_billed_day(&[
        (
            "USE1-Train:ml.p3.2xlarge",
            &[
                ("AmortizedCost", TRILLION, "USD"),
                ("UsageQuantity", "1", "Hrs"),
            ],
        ),
        (
            "USE1-Notebk:ml.t3.medium",
            &[
                ("AmortizedCost", TEN_TO_MINUS_17, "USD"),
                ("UsageQuantity", "1", "Hrs"),
            ],
        ),
    ]);
    let err = reconcile_nov_29(&Metered::new("us-east-1"), &other)
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains(
            "the billed cost of 2026-11-29, added up exactly, needs more digits than a \
             Decimal holds"
        ),
        "{err}"
    );
}

/// A receipt of `endpoint`'s `count` × `instance_type` at `rate` $/h, made at
/// `at` (no latency), with a compute line of 0.0001 USD and its process's running
/// figures `accrued` and `allocated`.
#[allow(clippy::too_many_arguments)]
fn accrual_at(
    id: &str,
    endpoint: &str,
    instance_type: &str,
    count: u32,
    rate: &str,
    at: &str,
    accrued: &str,
    allocated: &str,
) -> crate::billing::Cost {
    serde_json::from_value(serde_json::json!({
        "call_id": id, "at": at, "endpoint": endpoint, "variant": "AllTraffic",
        "billing": {"kind": "instance", "instance_type": instance_type, "instance_count": count},
        "allocation": "processor_sharing",
        "usage": {"operation": "InvokeEndpoint", "latency_us": 0, "bytes_in": 0,
                  "bytes_out": 0, "variant": "AllTraffic", "outcome": "ok"},
        "lines": [{"item": "compute", "quantity": "0.000001", "unit": "instance_hours",
            "price": {"status": "priced", "usd_per_unit": rate, "cost_usd": "0.0001",
                      "provenance": {"source": "live", "sku": null, "effective_date": null,
                                     "fetched_at": null, "note": null}}}],
        "cost_usd": "0.0001", "currency": "USD", "region": "us-east-1",
        "running_client_usd": "0", "running_endpoint_usd": "0",
        "accrual": {"accrued_usd": accrued, "allocated_usd": allocated, "utilisation": null}
    }))
    .unwrap()
}

/// Cost Explorer's answer grouped by a tag, for one settled `day`: each group
/// `(tag key, usage type, AmortizedCost, hours)`.
fn billed_by_tag(
    day: &'static str,
    groups: &'static [(&'static str, &'static str, &'static str, &'static str)],
) -> Rule {
    use aws_sdk_costexplorer::operation::get_cost_and_usage::GetCostAndUsageOutput;
    use aws_sdk_costexplorer::types::{DateInterval, Group, MetricValue, ResultByTime};
    mock!(aws_sdk_costexplorer::Client::get_cost_and_usage).then_output(move || {
        let metric =
            |amount: &str, unit: &str| MetricValue::builder().amount(amount).unit(unit).build();
        let start = NaiveDate::parse_from_str(day, "%Y-%m-%d").unwrap();
        let mut result = ResultByTime::builder()
            .time_period(
                DateInterval::builder()
                    .start(day)
                    .end(start.succ_opt().unwrap().to_string())
                    .build()
                    .unwrap(),
            )
            .estimated(false);
        for (tag, usage_type, usd, hours) in groups {
            result = result.groups(
                Group::builder()
                    .keys(*tag)
                    .keys(*usage_type)
                    .metrics("AmortizedCost", metric(usd, "USD"))
                    .metrics("UsageQuantity", metric(hours, "Hrs"))
                    .build(),
            );
        }
        GetCostAndUsageOutput::builder()
            .results_by_time(result.build())
            .build()
    })
}

/// DescribeEndpoint and ListTags of `endpoints`, each tagged `team` = `ml`.
fn tagged_ml(endpoints: &'static [&'static str]) -> Vec<Rule> {
    use aws_sdk_sagemaker::operation::describe_endpoint::DescribeEndpointOutput;
    use aws_sdk_sagemaker::operation::list_tags::ListTagsOutput;
    let arn = |name: &str| format!("arn:aws:sagemaker:us-east-1:123456789012:endpoint/{name}");
    let mut rules = Vec::new();
    for name in endpoints {
        rules.push(
            mock!(aws_sdk_sagemaker::Client::describe_endpoint)
                .match_requests(move |r| r.endpoint_name() == Some(*name))
                .then_output(move || {
                    DescribeEndpointOutput::builder()
                        .endpoint_name(*name)
                        .endpoint_arn(arn(name))
                        .build()
                }),
        );
        rules.push(
            mock!(aws_sdk_sagemaker::Client::list_tags)
                .match_requests(move |r| r.resource_arn() == Some(arn(name).as_str()))
                .then_output(|| {
                    let team = aws_sdk_sagemaker::types::Tag::builder()
                        .key("team")
                        .value("ml")
                        .build();
                    ListTagsOutput::builder().tags(team).build()
                }),
        );
    }
    rules
}

#[tokio::test]
async fn idle_time_of_two_kinds_of_charge_split_at_midnight_adds_up_in_one_tag_row() {
    // Team `ml` runs `gen` (10 × ml.g5.xlarge at $1.418/h: $14.18 an hour) and
    // `cls` (1 × ml.m5.xlarge at $0.23/h). Each process's ledger has a receipt
    // before midnight and one after (allocated 5 before, not its first call:
    // where counting starts), with nothing allocated between but the second
    // call's $0.0001 (its day's, 11-29).
    //
    // gen: $14.18 accrued from 23:00 to 00:00:01.234567, 3,601,234,567 µs, of
    // which 3,600,000,000 on 11-28: 14.18 × 3,600,000,000 ÷ 3,601,234,567 =
    // 14.175138844822712155|2… → 14.175138844822712155 (toward zero at 18
    // places). cls: $0.23 from 23:30 to 00:29:59.999999, 3,599,999,999 µs, of
    // which 1,800,000,000 on 11-28: 0.23 × 1,800,000,000 ÷ 3,599,999,999 =
    // 0.115000000031944444|45… → 0.115000000031944444.
    //
    // At Decimal's 28 digits those were 14.1751388448227121552007473 and
    // 0.1150000000319444444533179012, whose exact sum (30 digits) no Decimal
    // holds: the row's idle time was refused.
    let mut metered = Metered::new("us-east-1");
    for (ledger, cost) in [
        (
            "gen.jsonl",
            accrual_at(
                "g1",
                "gen",
                "ml.g5.xlarge",
                10,
                "1.418",
                "2026-11-28T23:00:00Z",
                "100",
                "5",
            ),
        ),
        (
            "gen.jsonl",
            accrual_at(
                "g2",
                "gen",
                "ml.g5.xlarge",
                10,
                "1.418",
                "2026-11-29T00:00:01.234567Z",
                "114.18",
                "5.0001",
            ),
        ),
        (
            "cls.jsonl",
            accrual_at(
                "c1",
                "cls",
                "ml.m5.xlarge",
                1,
                "0.23",
                "2026-11-28T23:30:00Z",
                "10",
                "5",
            ),
        ),
        (
            "cls.jsonl",
            accrual_at(
                "c2",
                "cls",
                "ml.m5.xlarge",
                1,
                "0.23",
                "2026-11-29T00:29:59.999999Z",
                "10.23",
                "5.0001",
            ),
        ),
    ] {
        metered.add(ledger, &cost).unwrap();
    }
    // 11-28 billed at list price: 10 instance-hours of ml.g5.xlarge (23:00 to
    // midnight) = $14.18, 1 of ml.m5.xlarge = $0.23.
    let bill = billed_by_tag(
        "2026-11-28",
        &[
            ("team$ml", "USE1-Host:ml.g5.xlarge", "14.18", "10"),
            ("team$ml", "USE1-Host:ml.m5.xlarge", "0.23", "1"),
        ],
    );
    let tags = tagged_ml(&["gen", "cls"]);
    let tags: Vec<&Rule> = tags.iter().collect();
    let since = NaiveDate::from_ymd_opt(2026, 11, 28).unwrap();
    let options = ReconcileOptions::new(since, since + chrono::Days::new(1))
        .group_by(GroupBy::Tag("team".into()));
    let r = account(&tags, &[], &[&bill])
        .reconcile(&metered, &options)
        .await
        .unwrap();
    assert_eq!(r.rows.len(), 1);
    let row = &r.rows[0];
    assert_eq!(row.group, "ml");
    // Billed 14.18 + 0.23 = 14.41; metered the two receipts of 11-28, 0.0002.
    assert_eq!(row.billed_usd, Decimal::new(1441, 2));
    assert_eq!(row.metered_usd, Decimal::new(2, 4));
    assert_eq!(row.difference_usd, Decimal::new(144098, 4));
    // Idle: 14.175138844822712155 + 0.115000000031944444 = 14.290138844854656599,
    // shown at 12 places: 14.290138844855.
    assert_eq!(
        row.parts.idle_instance_usd,
        Decimal::new(14_290_138_844_855, 12)
    );
    // Outside, at list price, beyond the metered and the idle:
    // 14.18 − (0.0001 + 14.175138844822712155) = 0.004761155177287845 and
    // 0.23 − (0.0001 + 0.115000000031944444) = 0.114899999968055556, together
    // 0.119661155145343401, shown 0.119661155145.
    assert_eq!(row.parts.outside_usd, Decimal::new(119_661_155_145, 12));
    assert_eq!(row.parts.discount_usd, Decimal::ZERO);
    assert_eq!(row.parts.unexplained_usd, Decimal::ZERO);
    // 14.290138844855 + 0.119661155145 = 14.4098: the difference, all explained.
    assert_eq!(
        r.days[0].parts.idle_instance_usd,
        row.parts.idle_instance_usd
    );
    assert_eq!(r.days[0].verdict, Verdict::Explained);
}

#[tokio::test]
async fn a_part_that_would_be_rounded_is_refused_naming_it() {
    // 10¹² USD of ml.m5.xlarge billed on 11-29 for 1 hour, and one receipt of
    // 10⁻¹⁷ USD at 10⁻¹⁷ USD an hour: on demand 1 × 10⁻¹⁷, so the discount is
    // 10¹² − 10⁻¹⁷ = 999,999,999,999.99999999999999999: 12 + 17 = 29 digits,
    // 10²⁹ − 1 > 2⁹⁶ − 1 ≈ 7.9 × 10²⁸. Plain `-` rounded it to 10¹² at 16
    // places, 10⁻¹⁷ off, unsaid; refused instead, naming it.
    let cost = lines_on_nov_29("a", "rt", &[("compute", "instance_hours", TEN_TO_MINUS_17)]);
    let metered = ledger([cost]);
    let bill = one_billed_day(&[(
        "USE1-Host:ml.m5.xlarge",
        &[
            ("AmortizedCost", TRILLION, "USD"),
            ("UsageQuantity", "1", "Hrs"),
        ],
    )]);
    let err = reconcile_nov_29(&metered, &bill).await.unwrap_err();
    assert!(
        err.to_string().contains(
            "the discount of Host:ml.m5.xlarge on 2026-11-29, worked out exactly, needs more \
             digits than a Decimal holds"
        ),
        "{err}"
    );
}

#[tokio::test]
async fn a_rows_difference_that_would_be_rounded_is_refused_naming_it() {
    // By tag, `rt` untagged: a credit of −792,281,625,142.64337593543950335 USD
    // (2⁹⁶ − 1 at 17 places, the most a Decimal holds, within the 10¹² a day's
    // bill can carry) against training billed to `(untagged)` on 11-29 (other
    // charges: as much) and 10⁻¹² USD of data in metered on it, none billed
    // (unexplained: −10⁻¹²). The row's difference, billed less metered,
    // −792,281,625,142.64337593543950335 − 0.000000000001, is 10⁵ past 2⁹⁶ − 1
    // at 17 places: refused. (The metered cost is taken at the 12 places a row
    // shows it, so a 10⁻¹⁷ USD metered would be 0 there and leave the billed
    // figure as it is.)
    let cost = lines_on_nov_29("a", "rt", &[("data_in", "gigabytes", "0.000000000001")]);
    let mut metered = Metered::new("us-east-1");
    metered.add("calls.jsonl", &cost).unwrap();
    let bill = billed_by_tag(
        "2026-11-29",
        &[(
            "team$",
            "USE1-Train:ml.p3.2xlarge",
            "-792281625142.64337593543950335",
            "1",
        )],
    );
    // rt described without an ARN: no tags to list, so untagged.
    let described = mock!(aws_sdk_sagemaker::Client::describe_endpoint).then_output(|| {
        aws_sdk_sagemaker::operation::describe_endpoint::DescribeEndpointOutput::builder()
            .endpoint_name("rt")
            .build()
    });
    let since = NaiveDate::from_ymd_opt(2026, 11, 29).unwrap();
    let options = ReconcileOptions::new(since, since + chrono::Days::new(1))
        .group_by(GroupBy::Tag("team".into()));
    let err = account(&[&described], &[], &[&bill])
        .reconcile(&metered, &options)
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains(
            "the billed less the metered cost of (untagged) on 2026-11-29, worked out \
             exactly, needs more digits than a Decimal holds"
        ),
        "{err}"
    );
}

/// 2026-12-02T06:00:00Z: when the blue/green update of [`deploying`] began.
fn six_hours_before_noon() -> aws_smithy_types::DateTime {
    aws_smithy_types::DateTime::from_secs(1_796_212_800 - 6 * 3600)
}

/// The account view of `deploying`, an endpoint mid blue/green update (its
/// `PendingDeploymentSummary` started at [`six_hours_before_noon`]; the endpoint
/// modified again since, at 10:00, so that its `LastModifiedTime` is not the
/// update's start): its old fleet, `AllTraffic`, 2 × ml.g5.xlarge with volumes of
/// `volume_gb`; the new fleet 1 × ml.g5.12xlarge up of 2 asked for, from the
/// endpoint config `deploying-config-2`, which describes its volumes as
/// `new_volume_gb`, or fails with that error code. CloudWatch answers `metrics`
/// (the variant's `Invocations`, `ModelLatency`).
async fn deploying_view(
    metrics: Rule,
    volume_gb: Option<i32>,
    new_volume_gb: Result<Option<i32>, &'static str>,
) -> EndpointsView {
    use aws_sdk_sagemaker::operation::describe_endpoint::DescribeEndpointOutput;
    use aws_sdk_sagemaker::operation::describe_endpoint_config::DescribeEndpointConfigOutput;
    use aws_sdk_sagemaker::operation::list_endpoints::ListEndpointsOutput;
    use aws_sdk_sagemaker::types::{PendingDeploymentSummary, PendingProductionVariantSummary};
    let list = mock!(aws_sdk_sagemaker::Client::list_endpoints).then_output(|| {
        let mut updating = summary("deploying", EndpointStatus::Updating);
        // Modified again at 10:00 (e.g. its weights), after the update began.
        updating.last_modified_time = Some(aws_smithy_types::DateTime::from_secs(
            1_796_212_800 - 2 * 3600,
        ));
        ListEndpointsOutput::builder().endpoints(updating).build()
    });
    let endpoint = mock!(aws_sdk_sagemaker::Client::describe_endpoint).then_output(|| {
        DescribeEndpointOutput::builder()
            .endpoint_name("deploying")
            .endpoint_config_name("deploying-config")
            .endpoint_status(EndpointStatus::Updating)
            .production_variants(
                ProductionVariantSummary::builder()
                    .variant_name("AllTraffic")
                    .current_instance_count(2)
                    .build(),
            )
            .pending_deployment_summary(
                PendingDeploymentSummary::builder()
                    .endpoint_config_name("deploying-config-2")
                    .start_time(six_hours_before_noon())
                    .production_variants(
                        PendingProductionVariantSummary::builder()
                            .variant_name("AllTraffic")
                            .instance_type(ProductionVariantInstanceType::MlG512Xlarge)
                            .current_instance_count(1)
                            .desired_instance_count(2)
                            .build(),
                    )
                    .build(),
            )
            .build()
    });
    let config = mock!(aws_sdk_sagemaker::Client::describe_endpoint_config).then_compute_response(
        move |input| {
            use aws_sdk_sagemaker::operation::describe_endpoint_config::DescribeEndpointConfigError;
            use aws_smithy_mocks::MockResponse;
            let name = input.endpoint_config_name().unwrap_or_default();
            let (instance_type, volume_gb) = match (name, new_volume_gb) {
                ("deploying-config-2", Err(code)) => {
                    return MockResponse::Error(DescribeEndpointConfigError::generic(
                        aws_smithy_types::error::ErrorMetadata::builder()
                            .code(code)
                            .message("not authorized to perform: sagemaker:DescribeEndpointConfig")
                            .build(),
                    ));
                }
                ("deploying-config-2", Ok(gb)) => (ProductionVariantInstanceType::MlG512Xlarge, gb),
                _ => (ProductionVariantInstanceType::MlG5Xlarge, volume_gb),
            };
            MockResponse::Output(
                DescribeEndpointConfigOutput::builder()
                    .endpoint_config_name(name)
                    .production_variants(
                        ProductionVariant::builder()
                            .variant_name("AllTraffic")
                            .model_name("deploying-model")
                            .instance_type(instance_type)
                            .initial_instance_count(2)
                            .set_volume_size_in_gb(volume_gb)
                            .build(),
                    )
                    .build(),
            )
        },
    );
    last_day(&account(&[&list, &endpoint, &config], &[&metrics], &[])).await
}

#[tokio::test]
async fn a_deployments_new_fleet_has_a_row_of_its_own_in_the_burn() {
    // 240 calls in the window, 1,200 s of model time.
    let view = deploying_view(metrics_of_variant_0(&[240.0], &[1.2e9]), None, Ok(None)).await;
    assert_eq!(view.rows.len(), 2, "{:#?}", view.rows);
    // The old fleet first, its new fleet right after it.
    let (old, new) = (&view.rows[0], &view.rows[1]);
    assert_eq!(old.variant.as_deref(), Some("AllTraffic"));
    assert!(!old.deploying);
    assert_eq!(old.instance_type.as_deref(), Some("ml.g5.xlarge"));
    // 2 × $1.408/h (snapshot, us-east-1 ml.g5.xlarge) = $2.816/h.
    assert_eq!(old.usd_per_hour, Some(Decimal::new(2816, 3)));
    assert_eq!(new.variant.as_deref(), Some("AllTraffic"));
    assert!(new.deploying);
    assert!(!new.shadow);
    assert_eq!(new.status, "Updating");
    assert_eq!(new.instance_type.as_deref(), Some("ml.g5.12xlarge"));
    // The instances up so far (CurrentInstanceCount), not the 2 asked for.
    assert_eq!(new.instance_count, Some(1));
    // 1 × $7.09/h (snapshot, us-east-1 ml.g5.12xlarge).
    assert_eq!(new.usd_per_hour, Some(Decimal::new(709, 2)));
    // AWS bills both fleets while the new one bakes:
    // 2 × $1.408 + 1 × $7.09 = $9.906/h; × 730 h = $7,231.38 a month.
    assert_eq!(view.totals.usd_per_hour, Decimal::new(9906, 3));
    assert_eq!(view.totals.usd_per_month, Decimal::new(723_138, 2));
    assert_eq!(view.totals.unpriced, 0);

    // JSON: `deploying` on the new fleet's row only.
    let json = serde_json::to_value(&view).unwrap();
    assert_eq!(json["rows"][1]["deploying"], true);
    assert!(json["rows"][0].get("deploying").is_none(), "{json:#}");
    let back: EndpointsView = serde_json::from_value(json).unwrap();
    assert_eq!(back, view);
}

#[tokio::test]
async fn a_new_fleets_calls_count_on_its_variant_which_shows_no_utilisation_meanwhile() {
    // CloudWatch counts both fleets' calls under `AllTraffic`: 240 calls and
    // 1,200 s of model time in the window, split between the fleets in a way it
    // does not show.
    let view = deploying_view(metrics_of_variant_0(&[240.0], &[1.2e9]), None, Ok(None)).await;
    let old = &view.rows[0];
    assert_eq!(old.invocations, Some(240));
    // 1,200 s over the old fleet's 2 × 86,400 s alone would be 0.69 % and
    // `underused`, though the new fleet served some of those calls: no guess.
    assert_eq!(old.utilisation, None);
    assert!(old.flags.is_empty(), "{:?}", old.flags);
    assert!(
        old.notes
            .iter()
            .any(|n| n.starts_with("no utilisation (nor `underused`) while a deployment's new")),
        "{:?}",
        old.notes
    );
    let new = view
        .rows
        .get(1)
        .expect("the new fleet's row, after its variant's");
    assert!(new.deploying);
    // Not asked for on its own: the same metric would count the calls twice.
    assert_eq!(new.invocations, None);
    assert!(new.flags.is_empty(), "{:?}", new.flags);
    // The old fleet over the 24 h window: 2.816 × 24 = $67.584. The new fleet
    // since the update began (its StartTime, 06:00, not the endpoint's later
    // LastModifiedTime, 10:00; the view is at noon):
    // 7.09 × 6 = $42.54.
    assert_eq!(old.window_cost_usd, Some(Decimal::new(67_584, 3)));
    assert_eq!(new.window_hours, Decimal::from(6));
    assert_eq!(new.window_cost_usd, Some(Decimal::new(4254, 2)));
    assert_eq!(view.totals.window_cost_usd, Decimal::new(110_124, 3));
    // The 240 calls cost both fleets' window: (67.584 + 42.54) ÷ 240 × 1,000 = $458.85.
    assert_eq!(old.usd_per_1000_invocations, Some(Decimal::new(45_885, 2)));
    assert_eq!(new.usd_per_1000_invocations, None);
}

#[tokio::test]
async fn both_fleets_of_an_uncalled_deploying_endpoint_are_idle() {
    // No call under `AllTraffic` in the window: neither fleet served one.
    let view = deploying_view(metrics_of_variant_0(&[], &[]), None, Ok(None)).await;
    // Idle burn: 2 × $1.408 + 1 × $7.09 = $9.906/h; × 730 h = $7,231.38 a month.
    assert_eq!(view.totals.idle_usd_per_hour, Decimal::new(9906, 3));
    assert_eq!(view.totals.idle_usd_per_month, Decimal::new(723_138, 2));
    let (old, new) = (&view.rows[0], &view.rows[1]);
    assert_eq!(old.invocations, Some(0));
    assert_eq!(old.flags, [Flag::Idle]);
    assert!(new.deploying);
    assert_eq!(new.flags, [Flag::Idle]);
}

#[tokio::test]
async fn a_new_fleets_storage_is_in_its_burn_as_the_deployments_config_sizes_it() {
    // The pending summary gives no volume size; the deployment's endpoint config
    // does (30 GB), and ML storage is billed per GB-month like the old fleet's:
    // 1 × $7.09/h + 1 × 30 GB × $0.14/GB-month (snapshot, us-east-1) ÷ 730 h
    // = $7.09 + $4.20 / 730 = $7.09 + $0.005753424657534… = $7.095753424658/h.
    let view = deploying_view(metrics_of_variant_0(&[], &[]), Some(30), Ok(Some(30))).await;
    let new = view
        .rows
        .get(1)
        .expect("the new fleet's row, after its variant's");
    assert!(new.deploying);
    assert_eq!(new.usd_per_hour, Some(Decimal::new(7_095_753_424_658, 12)));
    assert!(
        !new.notes.iter().any(|n| n.contains("ML storage")),
        "{:?}",
        new.notes
    );
}

#[tokio::test]
async fn a_new_fleets_storage_its_config_cannot_size_is_named_not_dropped() {
    // The deployment's endpoint config cannot be described: the new fleet's burn
    // is its instance alone ($7.09/h), and its row says what it leaves out.
    let view = deploying_view(
        metrics_of_variant_0(&[], &[]),
        Some(30),
        Err("AccessDeniedException"),
    )
    .await;
    let new = view
        .rows
        .get(1)
        .expect("the new fleet's row, after its variant's");
    assert!(new.deploying);
    assert_eq!(new.usd_per_hour, Some(Decimal::new(709, 2)));
    assert!(
        new.notes.iter().any(|n| n.starts_with(
            "the ML storage of its 1 instance is not in the burn: the deployment's endpoint \
             config `deploying-config-2` could not be described"
        )),
        "{:?}",
        new.notes
    );
}

#[tokio::test]
async fn a_ledger_of_two_regions_reconciles_the_one_asked_and_says_what_it_left_out() {
    // Two clients, one per region, sharing one ledger: a us-east-1 hour at $0.23
    // and an eu-west-1 hour at $0.256. Reconciling us-east-1 meters the first
    // alone; the second is another region's bill.
    let dir = tempfile::tempdir().unwrap();
    let ledger = dir.path().join("mixed.jsonl");
    let us = hour_at("us", "2026-11-29T10:00:00Z", "0.23");
    let mut eu = hour_at("eu", "2026-11-29T11:00:00Z", "0.256");
    eu.region = Some("eu-west-1".into());
    let lines: Vec<String> = [&us, &eu]
        .iter()
        .map(|cost| serde_json::to_string(cost).unwrap())
        .collect();
    std::fs::write(&ledger, lines.join("\n") + "\n").unwrap();

    let mut metered = Metered::new("us-east-1");
    metered.read_ledger(&ledger).unwrap();
    assert_eq!(metered.receipts(), 1);
    // Billed: 1 h × $0.23 = $0.23, as metered.
    let bill = one_billed_day(&[(
        "USE1-Host:ml.m5.xlarge",
        &[
            ("AmortizedCost", "0.23", "USD"),
            ("UsageQuantity", "1", "Hrs"),
        ],
    )]);
    let r = reconcile_nov_29(&metered, &bill).await.unwrap();
    assert_eq!(r.days[0].metered_usd, Decimal::new(23, 2));
    assert_eq!(r.days[0].difference_usd, Decimal::ZERO);
    assert_eq!(r.days[0].verdict, Verdict::Agrees);
    assert!(
        r.notes.iter().any(|n| n
            == "1 receipt of eu-west-1 left out: this reconciliation is of us-east-1 \
                           (reconcile it with --region eu-west-1)"),
        "{:?}",
        r.notes
    );

    // A receipt in another currency still refuses its ledger.
    let mut eur = hour_at("eur", "2026-11-29T12:00:00Z", "0.2");
    eur.currency = "EUR".into();
    let err = Metered::new("us-east-1")
        .add("eur.jsonl", &eur)
        .unwrap_err();
    assert!(err.to_string().contains("is in EUR"), "{err}");
}

#[tokio::test]
async fn receipts_without_a_region_beside_only_another_regions_are_said_to_be_a_guess() {
    // A rolling ledger from before and after receipts carried a region: an old
    // receipt without one, then one of eu-west-1. Reconciling us-east-1, the old
    // one is taken as us-east-1's (1 h × $0.23 = $0.23 metered), but no receipt
    // names us-east-1: the note says it may be eu-west-1's. (The CLI refuses.)
    let mut old = hour_at("old", "2026-11-29T10:00:00Z", "0.23");
    old.region = None;
    let mut eu = hour_at("eu", "2026-11-29T11:00:00Z", "0.256");
    eu.region = Some("eu-west-1".into());
    let mut metered = Metered::new("us-east-1");
    metered.add("calls.jsonl", &old).unwrap();
    metered.add("calls.jsonl", &eu).unwrap();
    assert_eq!(metered.receipts(), 1);
    assert_eq!(metered.without_region(), 1);
    let bill = one_billed_day(&[(
        "USE1-Host:ml.m5.xlarge",
        &[
            ("AmortizedCost", "0.23", "USD"),
            ("UsageQuantity", "1", "Hrs"),
        ],
    )]);
    let r = reconcile_nov_29(&metered, &bill).await.unwrap();
    assert_eq!(r.days[0].metered_usd, Decimal::new(23, 2));
    assert!(
        r.notes.iter().any(|n| n
            == "1 receipt carries no region (written before receipts did): taken as \
                us-east-1, though no receipt names us-east-1 and those left out name \
                eu-west-1: if the ones without a region are eu-west-1's, reconcile with \
                --region eu-west-1"),
        "{:?}",
        r.notes
    );

    // With a receipt naming us-east-1 as well, the old one is taken as it, and
    // the note says only that.
    let mut us = hour_at("us", "2026-11-29T12:00:00Z", "0.23");
    us.region = Some("us-east-1".into());
    metered.add("calls.jsonl", &us).unwrap();
    let r = reconcile_nov_29(&metered, &bill).await.unwrap();
    assert!(
        r.notes.iter().any(|n| n
            == "1 receipt carries no region (written before receipts did): taken as us-east-1"),
        "{:?}",
        r.notes
    );
}

#[tokio::test]
async fn every_usage_type_row_is_labelled_without_its_region_prefix() {
    // 11-29: the metered hour of rt (1 h × $0.23), and two charges of no endpoint
    // the meter does not know, a training job (2 h × $3.825 = $7.65) and a
    // notebook (1 h × $0.05). Each row's label drops the bill's region prefix,
    // the charges of no endpoint as the hosting one.
    let metered = ledger([hour_at("a", "2026-11-29T10:00:00Z", "0.23")]);
    let bill = one_billed_day(&[
        (
            "USE1-Host:ml.m5.xlarge",
            &[
                ("AmortizedCost", "0.23", "USD"),
                ("UsageQuantity", "1", "Hrs"),
            ],
        ),
        (
            "USE1-Train:ml.p3.2xlarge",
            &[
                ("AmortizedCost", "7.65", "USD"),
                ("UsageQuantity", "2", "Hrs"),
            ],
        ),
        (
            "USE1-Notebk:ml.t3.medium",
            &[
                ("AmortizedCost", "0.05", "USD"),
                ("UsageQuantity", "1", "Hrs"),
            ],
        ),
    ]);
    let r = reconcile_nov_29(&metered, &bill).await.unwrap();
    let rows: Vec<(&str, Decimal, Decimal)> = r
        .rows
        .iter()
        .map(|row| (row.group.as_str(), row.billed_usd, row.parts.other_usd))
        .collect();
    assert_eq!(
        rows,
        [
            ("Host:ml.m5.xlarge", Decimal::new(23, 2), Decimal::ZERO),
            (
                "Notebk:ml.t3.medium",
                Decimal::new(5, 2),
                Decimal::new(5, 2)
            ),
            (
                "Train:ml.p3.2xlarge",
                Decimal::new(765, 2),
                Decimal::new(765, 2)
            ),
        ]
    );
    // The day: $0.23 + $7.65 + $0.05 = $7.93 billed, $0.23 metered, the $7.70
    // between them other SageMaker charges.
    assert_eq!(r.days[0].billed_usd, Decimal::new(793, 2));
    assert_eq!(r.days[0].parts.other_usd, Decimal::new(770, 2));
}

/// `cost` with a per-call fee line ($0.0005 for 1 call, not a SageMaker usage
/// type) and `unpriced` data-in lines without a price.
fn with_fee_and_unpriced(mut cost: crate::billing::Cost, unpriced: usize) -> crate::billing::Cost {
    let provenance = serde_json::json!({"source": "override", "sku": null,
        "effective_date": null, "fetched_at": null, "note": "configured per endpoint"});
    let mut lines = vec![
        serde_json::json!({"item": "inference", "quantity": "1", "unit": "calls",
        "price": {"status": "priced", "usd_per_unit": "0.0005", "cost_usd": "0.0005",
                  "provenance": provenance}}),
    ];
    for _ in 0..unpriced {
        lines.push(
            serde_json::json!({"item": "data_in", "quantity": "0.000001",
            "unit": "gigabytes",
            "price": {"status": "unpriced", "reason": "no data-in price"}}),
        );
    }
    for line in lines {
        cost.lines.push(serde_json::from_value(line).unwrap());
    }
    cost
}

#[tokio::test]
async fn the_notes_count_the_receipts_of_the_days_reconciled_only() {
    // One ledger, 11-29 and 11-30; 11-29 reconciled. On 11-29: a us-east-1 hour
    // with a $0.0005 fee and 2 unpriced lines, an hour without a region, an
    // eu-west-1 hour. On 11-30 (outside the days): a us-east-1 hour with a
    // $0.0005 fee and 1 unpriced line, an hour without a region, two eu-west-1
    // hours.
    let no_region = |id: &str, at: &str| {
        let mut cost = hour_at(id, at, "0.23");
        cost.region = None;
        cost
    };
    let eu = |id: &str, at: &str| {
        let mut cost = hour_at(id, at, "0.256");
        cost.region = Some("eu-west-1".into());
        cost
    };
    let receipts = [
        with_fee_and_unpriced(hour_at("a", "2026-11-29T10:00:00Z", "0.23"), 2),
        no_region("b", "2026-11-29T11:00:00Z"),
        eu("c", "2026-11-29T12:00:00Z"),
        with_fee_and_unpriced(hour_at("d", "2026-11-30T10:00:00Z", "0.23"), 1),
        no_region("e", "2026-11-30T11:00:00Z"),
        eu("f", "2026-11-30T12:00:00Z"),
        eu("g", "2026-11-30T13:00:00Z"),
    ];
    let mut metered = Metered::new("us-east-1");
    for cost in &receipts {
        metered.add("calls.jsonl", cost).unwrap();
    }
    // Every receipt read of us-east-1 (a, b, d, e), those without a region (b, e)
    // and those left out (c, f, g): the ledger's, whatever the days.
    assert_eq!(metered.receipts(), 4);
    assert_eq!(metered.without_region(), 2);
    assert_eq!(metered.left_out().get("eu-west-1"), Some(&3));

    // Billed on 11-29: 2 h × $0.23 = $0.46, as metered (a and b).
    let bill = one_billed_day(&[(
        "USE1-Host:ml.m5.xlarge",
        &[
            ("AmortizedCost", "0.46", "USD"),
            ("UsageQuantity", "2", "Hrs"),
        ],
    )]);
    let r = reconcile_nov_29(&metered, &bill).await.unwrap();
    assert_eq!(r.days[0].metered_usd, Decimal::new(46, 2));
    // Compared: the region's receipts of 11-29, a and b (not d and e of 11-30).
    assert_eq!(r.receipts, 2);
    // Of 11-29: b without a region, c left out, a's 2 unpriced lines and its
    // $0.0005 fee (not 2, 3, 3 lines and $0.0005 + $0.0005 = $0.001); the
    // receipts of 11-30 are said to be outside the days.
    let want = [
        "receipts from 2026-11-29 to 2026-11-30; only those from 2026-11-29 to the day \
         before 2026-11-30 are compared",
        "1 receipt carries no region (written before receipts did): taken as us-east-1",
        "1 receipt of eu-west-1 left out: this reconciliation is of us-east-1 (reconcile it \
         with --region eu-west-1)",
        "2 receipt lines are unpriced and count as $0 metered",
        "$0.0005 of per-call and per-token fees on the receipts are not Amazon SageMaker \
         usage and are left out",
    ];
    assert_eq!(r.notes, want);

    // 11-28 reconciled, a day without a receipt: everything billed (1 h, $0.23) is
    // outside sagemeter, and no note counts the receipts of other days.
    let bill = billed_days(&[("2026-11-28", false, "USE1-Host:ml.m5.xlarge", "0.23", "1")]);
    let since = NaiveDate::from_ymd_opt(2026, 11, 28).unwrap();
    let options = ReconcileOptions::new(since, since + chrono::Days::new(1));
    let r = account(&[], &[], &[&bill])
        .reconcile(&metered, &options)
        .await
        .unwrap();
    assert_eq!(r.days[0].parts.outside_usd, Decimal::new(23, 2));
    assert_eq!(r.receipts, 0);
    let want = [
        "no receipts of these days: everything billed is outside sagemeter",
        "receipts from 2026-11-29 to 2026-11-30; only those from 2026-11-28 to the day \
         before 2026-11-29 are compared",
    ];
    assert_eq!(r.notes, want);
}

/// The account a Cost Explorer request is filtered to (`LINKED_ACCOUNT`), if any.
fn linked_account(
    request: &aws_sdk_costexplorer::operation::get_cost_and_usage::GetCostAndUsageInput,
) -> Option<String> {
    use aws_sdk_costexplorer::types::Dimension;
    let filter = request.filter()?;
    filter
        .and()
        .iter()
        .filter_map(|e| e.dimensions())
        .find(|d| d.key() == Some(&Dimension::LinkedAccount))
        .map(|d| d.values().join(","))
}

#[tokio::test]
async fn the_bill_read_is_the_callers_accounts_or_the_one_named() {
    use aws_sdk_costexplorer::operation::get_cost_and_usage::GetCostAndUsageOutput;
    // From a management account, Cost Explorer answers for every member account
    // unless filtered: each request asks for one account's bill, and the mock
    // answers only a request filtered to the account expected.
    let bill_of = |account: &'static str| {
        mock!(aws_sdk_costexplorer::Client::get_cost_and_usage)
            .match_requests(move |r| linked_account(r).as_deref() == Some(account))
            .then_output(|| GetCostAndUsageOutput::builder().build())
    };
    let since = NaiveDate::from_ymd_opt(2026, 11, 29).unwrap();
    let options = ReconcileOptions::new(since, since + chrono::Days::new(1));

    // By default, the caller's (STS says 123456789012); the output names none.
    let callers = bill_of(CALLER);
    let r = account(&[], &[], &[&callers])
        .reconcile(&Metered::new("us-east-1"), &options)
        .await
        .unwrap();
    assert_eq!(callers.num_calls(), 1);
    assert_eq!(r.account, None);

    // A member account named: its bill, and the output says which.
    let members = bill_of("210987654321");
    let r = account(&[], &[], &[&members])
        .reconcile(
            &Metered::new("us-east-1"),
            &options.clone().account("210987654321"),
        )
        .await
        .unwrap();
    assert_eq!(members.num_calls(), 1);
    assert_eq!(r.account.as_deref(), Some("210987654321"));

    // No account id: refused before Cost Explorer is asked.
    let never = bill_of("123");
    let err = account(&[], &[], &[&never])
        .reconcile(&Metered::new("us-east-1"), &options.clone().account("123"))
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("`123` is not an AWS account id"),
        "{err}"
    );
    assert_eq!(never.num_calls(), 0);
}

#[tokio::test]
async fn a_negative_tolerance_is_refused_before_cost_explorer_is_asked() {
    use aws_sdk_costexplorer::operation::get_cost_and_usage::GetCostAndUsageOutput;
    // Within -$0.01 no difference is, not even none: a day billed $5.52 and
    // metered $5.52 (|5.52 − 5.52| = 0 > −0.01) would come back `Differs`.
    let never = mock!(aws_sdk_costexplorer::Client::get_cost_and_usage)
        .then_output(|| GetCostAndUsageOutput::builder().build());
    let since = NaiveDate::from_ymd_opt(2026, 11, 29).unwrap();
    let options = ReconcileOptions::new(since, since + chrono::Days::new(1))
        .tolerance_usd(Decimal::new(-1, 2));
    let err = account(&[], &[], &[&never])
        .reconcile(&Metered::new("us-east-1"), &options)
        .await
        .unwrap_err();
    assert!(matches!(&err, AccountError::Invalid(_)), "{err:?}");
    assert!(
        err.to_string().contains("the tolerance $-0.01 is negative"),
        "{err}"
    );
    assert_eq!(never.num_calls(), 0);

    // None is as strict as it gets, and taken.
    let billed_nothing = mock!(aws_sdk_costexplorer::Client::get_cost_and_usage)
        .then_output(|| GetCostAndUsageOutput::builder().build());
    account(&[], &[], &[&billed_nothing])
        .reconcile(
            &Metered::new("us-east-1"),
            &options.clone().tolerance_usd(Decimal::ZERO),
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn sts_failing_to_name_the_caller_is_its_own_error_and_says_account_skips_it() {
    use aws_sdk_costexplorer::operation::get_cost_and_usage::GetCostAndUsageOutput;
    use aws_sdk_sts::operation::get_caller_identity::{
        GetCallerIdentityError, GetCallerIdentityOutput,
    };
    use aws_smithy_types::error::ErrorMetadata;
    let since = NaiveDate::from_ymd_opt(2026, 11, 29).unwrap();
    let options = ReconcileOptions::new(since, since + chrono::Days::new(1));
    let never = mock!(aws_sdk_costexplorer::Client::get_cost_and_usage)
        .then_output(|| GetCostAndUsageOutput::builder().build());
    let sts_error = |code: &'static str, message: &'static str| {
        mock!(aws_sdk_sts::Client::get_caller_identity).then_error(move || {
            GetCallerIdentityError::generic(
                ErrorMetadata::builder().code(code).message(message).build(),
            )
        })
    };

    // Expired credentials: STS's own error (a service error, its code and SDK
    // source kept), not "an option cannot work"; Cost Explorer is not asked.
    let expired = sts_error(
        "ExpiredToken",
        "The security token included in the request is expired",
    );
    let err = account_with_sts(&[&never], &[&expired])
        .reconcile(&Metered::new("us-east-1"), &options)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, AccountError::Service { operation: "GetCallerIdentity", code: Some(c), .. }
            if c == "ExpiredToken"),
        "{err:?}"
    );
    assert!(std::error::Error::source(&err).is_some(), "{err:?}");
    assert_eq!(
        err.to_string(),
        "GetCallerIdentity failed: The security token included in the request is expired; the \
         caller's account, whose bill is reconciled by default, is asked of STS: naming it \
         (--account, ReconcileOptions::account) skips this"
    );

    // Refused (an SCP, say): a missing permission naming the action.
    let denied = sts_error(
        "AccessDenied",
        "not authorized to perform sts:GetCallerIdentity",
    );
    let err = account_with_sts(&[&never], &[&denied])
        .reconcile(&Metered::new("us-east-1"), &options)
        .await
        .unwrap_err();
    assert!(
        matches!(
            &err,
            AccountError::MissingPermission {
                action: "sts:GetCallerIdentity",
                ..
            }
        ),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .ends_with("(--account, ReconcileOptions::account) skips this)"),
        "{err}"
    );

    // An answer without an account id: the option that would work is named.
    let anonymous = mock!(aws_sdk_sts::Client::get_caller_identity)
        .then_output(|| GetCallerIdentityOutput::builder().build());
    let err = account_with_sts(&[&never], &[&anonymous])
        .reconcile(&Metered::new("us-east-1"), &options)
        .await
        .unwrap_err();
    assert!(matches!(&err, AccountError::Invalid(_)), "{err:?}");
    assert!(
        err.to_string()
            .starts_with("STS answered GetCallerIdentity without an account id"),
        "{err}"
    );
    assert_eq!(never.num_calls(), 0);
}

/// An endpoint scaled to zero at the time of the view (0 × ml.m5.xlarge, $0.23/h
/// in the bundled snapshot), after serving 500 calls in the window (100 s of
/// `ModelLatency`) on instances since scaled in: no window cost of $0, no $0 per
/// 1,000 calls; the note says what is known.
#[tokio::test]
async fn an_endpoint_scaled_to_zero_after_calls_in_the_window_has_no_window_cost_of_zero() {
    let list = listed_alone("sleepy");
    let [a, b] = described("sleepy", EndpointStatus::InService, 0);
    // 500 calls, 100 s (1e8 µs) of ModelLatency in the window.
    let metrics = metrics_of_variant_0(&[500.0], &[1e8]);
    let account = account(&[&list, &a, &b], &[&metrics], &[]);
    let view = last_day(&account).await;
    let row = &view.rows[0];
    // Nothing burns now: 0 instances × $0.23/h.
    assert_eq!(row.usd_per_hour, Some(Decimal::ZERO));
    assert_eq!(row.invocations, Some(500));
    assert_eq!(row.window_cost_usd, None, "{row:?}");
    assert_eq!(row.usd_per_1000_invocations, None, "{row:?}");
    assert!(!row.flags.contains(&Flag::Idle), "{:?}", row.flags);
    // The calls' model time at the instance rate: 100 s × $0.23/h ÷ 3600 =
    // $0.0063888…, to 12 places 0.006388888889. Not a lower bound (calls that
    // overlapped on one instance count each: 4 calls of 25 s at once sum to
    // 100 s on 25 s of an instance), nor an upper one (the instance stood between
    // calls): stated as what it is.
    let model_time = (Decimal::from(100) * Decimal::new(23, 2) / Decimal::from(3600)).round_dp(12);
    assert_eq!(model_time.to_string(), "0.006388888889");
    let note = row
        .notes
        .iter()
        .find(|n| n.contains("scaled to zero now"))
        .unwrap_or_else(|| panic!("no note: {:?}", row.notes));
    assert!(note.contains("served 500 calls"), "{note}");
    assert!(
        note.contains(&format!(
            "ModelLatency summed, 100 s, calls that overlapped each counted) × 0.23 USD per \
             instance-hour is {model_time} USD, not the window's cost"
        )),
        "{note}"
    );
    assert!(!note.contains("at least"), "{note}");
    // The totals leave it out of the window's cost, and say so.
    assert_eq!(view.totals.window_cost_usd, Decimal::ZERO);
    assert_eq!(view.totals.window_unpriced, 1);
    assert_eq!(view.totals.unpriced, 0);
}

/// An inference-component endpoint scaled to zero (0 × ml.g5.12xlarge): the
/// component rows stay, with their calls, and the one called has no $0 window
/// cost either.
#[tokio::test]
async fn components_of_a_variant_scaled_to_zero_keep_their_rows_and_calls() {
    let view = components_view(0, 3.0).await;
    let names: Vec<Option<&str>> = view
        .rows
        .iter()
        .map(|r| r.inference_component.as_deref())
        .collect();
    assert_eq!(
        names,
        [None, Some("large"), Some("small"), Some("small-lora")]
    );
    let (variant, large) = (&view.rows[0], &view.rows[1]);
    // The variant and large each served 100 calls in the window; nothing burns now.
    for row in [variant, large] {
        assert_eq!(row.usd_per_hour, Some(Decimal::ZERO));
        assert_eq!(row.invocations, Some(100));
        assert_eq!(row.window_cost_usd, None, "{row:?}");
        assert_eq!(row.usd_per_1000_invocations, None, "{row:?}");
        assert!(
            row.notes.iter().any(|n| n.contains("scaled to zero now")),
            "{:?}",
            row.notes
        );
    }
    assert_eq!(large.copies, Some(1));
    assert_eq!(large.reserved_share, None);
    assert_eq!(view.totals.window_unpriced, 1);
}

/// An inference-component endpoint that ran 1 × ml.g5.12xlarge ($7.09/h) from
/// 06:00 to 12:00 of the window, then scaled to zero, viewed by a caller who may
/// not `cloudwatch:GetMetricData`: AWS billed 6 h × $7.09 = $42.54 for it, which
/// the deployment now (0 instances) does not tell. No window cost of 0 × $7.09/h
/// × 24 h = $0, nor $0 per 1,000 calls: none at all, counted in
/// `window_unpriced`, with a note; so for its components at 0 instances too. A
/// component at 0 copies on instances still up likewise: its copies since scaled
/// in reserved a share of them for a time not known.
#[tokio::test]
async fn a_variant_at_zero_whose_calls_cloudwatch_did_not_answer_has_no_window_cost_of_zero() {
    let view = components_view_with(0, 3.0, 1, None).await;
    assert!(
        view.warnings
            .iter()
            .any(|w| w.starts_with("invocations unknown:")),
        "{:?}",
        view.warnings
    );
    let (variant, large, small) = (
        &view.rows[0],
        component_row(&view, "large"),
        component_row(&view, "small"),
    );
    assert_eq!(variant.inference_component, None);
    for row in [variant, large, small] {
        // Nothing burns now: 0 × $7.09/h.
        assert_eq!(row.usd_per_hour, Some(Decimal::ZERO));
        assert_eq!(row.invocations, None);
        assert_eq!(row.window_cost_usd, None, "{row:?}");
        assert_eq!(row.usd_per_1000_invocations, None, "{row:?}");
        assert!(
            row.notes.iter().any(|n| n.starts_with(
                "scaled to zero now (0 instances); CloudWatch did not answer for its calls"
            )),
            "{:?}",
            row.notes
        );
    }
    // The adapter burns nothing on any count: its $0 is no guess.
    let adapter = component_row(&view, "small-lora");
    assert_eq!(adapter.window_cost_usd, Some(Decimal::ZERO), "{adapter:?}");
    // The totals count the variant (not its components) as not known.
    assert_eq!(view.totals.window_cost_usd, Decimal::ZERO);
    assert_eq!(view.totals.window_unpriced, 1);
    assert_eq!(view.totals.unpriced, 0);

    // 2 × ml.g5.12xlarge up all window, small at 0 copies: the variant's window
    // is known, 2 × $7.09/h × 24 h = $340.32; small's is not (its copy may have
    // held 1 of the 8 GPUs for part of the window), not 0.
    let view = components_view_with(2, 3.0, 0, None).await;
    assert_eq!(view.rows[0].window_cost_usd, Some(Decimal::new(34032, 2)));
    let small = component_row(&view, "small");
    assert_eq!(small.copies, Some(0));
    assert_eq!(small.window_cost_usd, None, "{small:?}");
    assert!(
        small.notes.iter().any(|n| n
            .starts_with("scaled to zero now (0 copies); CloudWatch did not answer for its calls")),
        "{:?}",
        small.notes
    );
    assert_eq!(view.totals.window_cost_usd, Decimal::new(34032, 2));
    assert_eq!(view.totals.window_unpriced, 0);
}

/// An asynchronous endpoint scaled to zero at the time of the view (0 ×
/// ml.g5.xlarge, async autoscaling down to 0 while its queue is empty). Its use
/// is not published as `Invocations`, so whether it scaled out for requests in
/// the window is not known: no window cost of $0 (0 × $1.41/h × 24 h), but none
/// at all, counted in `window_unpriced`, with a note.
#[tokio::test]
async fn an_asynchronous_endpoint_scaled_to_zero_has_no_window_cost_of_zero() {
    let account = async_g5_account(
        "queue",
        || {
            ProductionVariant::builder()
                .variant_name("AllTraffic")
                .model_name("queue-model")
                .instance_type(ProductionVariantInstanceType::MlG5Xlarge)
                .initial_instance_count(1)
                .build()
        },
        Some(0),
    );
    let view = last_day(&account).await;
    let row = &view.rows[0];
    assert_eq!(row.kind, VariantKind::AsyncInstance);
    assert_eq!(row.instance_count, Some(0));
    // Nothing burns now: 0 instances × $1.41/h = $0/h.
    assert_eq!(row.usd_per_hour, Some(Decimal::ZERO));
    // The window's cost is not known: not 0 × $1.41/h × 24 h = $0.
    assert_eq!(row.window_cost_usd, None, "{row:?}");
    assert_eq!(row.usd_per_1000_invocations, None);
    assert!(!row.flags.contains(&Flag::Idle), "{:?}", row.flags);
    assert!(
        row.notes.iter().any(|n| n
            .starts_with("scaled to zero now (0 instances): an asynchronous endpoint scales out")),
        "{:?}",
        row.notes
    );
    assert_eq!(view.totals.window_cost_usd, Decimal::ZERO);
    assert_eq!(view.totals.window_unpriced, 1);
    assert_eq!(view.totals.unpriced, 0);
    assert_eq!(view.totals.usd_per_hour, Decimal::ZERO);
}

/// ListEndpoints answering each of `endpoints` in service, created (and come into
/// service) the given hours before [`noon`].
fn listed_aged(endpoints: &'static [(&'static str, u64)]) -> Rule {
    use aws_sdk_sagemaker::operation::list_endpoints::ListEndpointsOutput;
    mock!(aws_sdk_sagemaker::Client::list_endpoints).then_output(move || {
        let mut list = ListEndpointsOutput::builder();
        for (name, hours_ago) in endpoints {
            let mut endpoint = summary(name, EndpointStatus::InService);
            let created =
                aws_smithy_types::DateTime::from_secs(1_796_212_800 - *hours_ago as i64 * 3600);
            endpoint.creation_time = Some(created);
            endpoint.last_modified_time = Some(created);
            list = list.endpoints(endpoint);
        }
        list.build()
    })
}

/// GetMetricData answering each query by its endpoint (`EndpointName`, else
/// `InferenceComponentName`) and the request's start, from `answers`: (name,
/// hours before [`noon`] the span starts, invocations, ModelLatency in µs). A
/// query `answers` does not foresee gets a billion calls, which no figure below
/// survives.
fn metrics_by_start(answers: &'static [(&'static str, u64, f64, f64)]) -> Rule {
    use aws_sdk_cloudwatch::operation::get_metric_data::GetMetricDataOutput;
    use aws_sdk_cloudwatch::types::MetricDataResult;
    mock!(aws_sdk_cloudwatch::Client::get_metric_data).then_compute_output(move |request| {
        let start = request.start_time().map(|t| t.secs()).unwrap_or_default();
        let mut output = GetMetricDataOutput::builder();
        for query in request.metric_data_queries() {
            let id = query.id().unwrap_or_default();
            let name = query
                .metric_stat()
                .and_then(|s| s.metric())
                .and_then(|m| {
                    m.dimensions()
                        .iter()
                        .find(|d| {
                            matches!(
                                d.name(),
                                Some("EndpointName") | Some("InferenceComponentName")
                            )
                        })
                        .and_then(|d| d.value())
                })
                .unwrap_or_default();
            let found = answers.iter().find(|(n, hours_ago, _, _)| {
                *n == name && start == 1_796_212_800 - *hours_ago as i64 * 3600
            });
            let value = match (found, id.starts_with('i')) {
                (Some((_, _, calls, _)), true) => *calls,
                (Some((_, _, _, latency_us)), false) => *latency_us,
                (None, _) => 1e9,
            };
            output = output
                .metric_data_results(MetricDataResult::builder().id(id).values(value).build());
        }
        output.build()
    })
}

/// An endpoint deleted and re-created under the same name 2 hours ago: CloudWatch
/// holds the calls of both under the same `EndpointName`. Its calls are counted
/// over the span its cost is measured over, since its re-creation, not over the
/// window; another endpoint, older than the window, is asked over the window, in
/// a request of its own.
#[tokio::test]
async fn calls_are_counted_over_the_span_the_cost_is_measured_over() {
    let list = listed_aged(&[("llm", 2), ("steady", 1000)]);
    let [a, b] = described("llm", EndpointStatus::InService, 1);
    let [c, d] = described("steady", EndpointStatus::InService, 1);
    // llm: over the 24 h window 2,400 calls and 1,200 s of ModelLatency (those of
    // the endpoint deleted included); since its re-creation 200 calls, 100 s.
    // steady: 480 calls, 4,320 s over the window.
    let metrics = metrics_by_start(&[
        ("llm", 24, 2400.0, 1.2e9),
        ("llm", 2, 200.0, 1e8),
        ("steady", 24, 480.0, 4.32e9),
    ]);
    let view = last_day(&account(&[&list, &a, &b, &c, &d], &[&metrics], &[])).await;
    let row = |name: &str| view.rows.iter().find(|r| r.endpoint == name).unwrap();

    // llm: 1 × ml.m5.xlarge at $0.23/h for 2 h = $0.46, over its 200 calls:
    // 0.46 × 1,000 ÷ 200 = $2.30 per 1,000 (not 0.46 × 1,000 ÷ 2,400 = 0.1917).
    // Model time 100 s ÷ (1 instance × 7,200 s) = 0.013888… → 0.0139, below 10 %:
    // underused (not 1,200 ÷ 7,200 = 0.1667).
    let llm = row("llm");
    assert_eq!(llm.window_hours, Decimal::from(2));
    assert_eq!(llm.invocations, Some(200));
    assert_eq!(llm.window_cost_usd, Some(Decimal::new(46, 2)));
    assert_eq!(llm.usd_per_1000_invocations, Some(Decimal::new(23, 1)));
    assert_eq!(llm.utilisation, Some(Decimal::new(139, 4)));
    assert_eq!(llm.flags, [Flag::Underused]);

    // steady: $0.23 × 24 h = $5.52 over 480 calls = $11.50 per 1,000; 4,320 s ÷
    // 86,400 s = 0.05.
    let steady = row("steady");
    assert_eq!(steady.invocations, Some(480));
    assert_eq!(steady.usd_per_1000_invocations, Some(Decimal::new(115, 1)));
    assert_eq!(steady.utilisation, Some(Decimal::new(5, 2)));
    // One request per distinct start.
    assert_eq!(metrics.num_calls(), 2);
}

/// Targets of two starts: 60 of one (two requests, 50 targets and 100 queries the
/// most a request holds), 3 of the other (one more), every id unique across the
/// requests, and every target answered with its own figure.
#[tokio::test]
async fn metric_requests_are_one_set_per_start_chunked_with_unique_ids() {
    use aws_sdk_cloudwatch::operation::get_metric_data::GetMetricDataOutput;
    use aws_sdk_cloudwatch::types::MetricDataResult;
    use std::sync::{Arc, Mutex};
    // Each request's start (seconds) and query ids.
    type Requests = Vec<(i64, Vec<String>)>;
    let seen: Arc<Mutex<Requests>> = Arc::default();
    let record = seen.clone();
    let metrics =
        mock!(aws_sdk_cloudwatch::Client::get_metric_data).then_compute_output(move |request| {
            let ids: Vec<String> = request
                .metric_data_queries()
                .iter()
                .map(|q| q.id().unwrap_or_default().to_owned())
                .collect();
            let start = request.start_time().map(|t| t.secs()).unwrap_or_default();
            record.lock().unwrap().push((start, ids.clone()));
            // Target k called k + 1 times.
            let mut output = GetMetricDataOutput::builder();
            for id in ids.iter().filter(|id| id.starts_with('i')) {
                let k: f64 = id[1..].parse().unwrap();
                output = output.metric_data_results(
                    MetricDataResult::builder().id(id).values(k + 1.0).build(),
                );
            }
            output.build()
        });
    let client = mocked_client!(aws_sdk_cloudwatch, &[&metrics]);
    let (day_ago, hours_ago) = (
        noon() - Duration::from_secs(86_400),
        noon() - Duration::from_secs(7200),
    );
    // Interleaved: targets 0, 2, 4 start 2 hours ago, the others a day ago.
    let targets: Vec<metrics::Target> = (0..63)
        .map(|k| metrics::Target {
            endpoint: format!("e{k}"),
            variant: "AllTraffic".into(),
            component: None,
            start: if k < 6 && k % 2 == 0 {
                hours_ago
            } else {
                day_ago
            },
        })
        .collect();
    let usage = metrics::fetch(&client, &targets, noon()).await.unwrap();
    for (k, used) in usage.iter().enumerate() {
        assert_eq!(
            used.as_ref().unwrap().invocations,
            k as u64 + 1,
            "target {k}"
        );
    }
    let seen = seen.lock().unwrap();
    let sizes: Vec<(i64, usize)> = seen.iter().map(|(s, ids)| (*s, ids.len())).collect();
    let (day, hours) = (1_796_212_800 - 86_400, 1_796_212_800 - 7200);
    assert_eq!(sizes, [(day, 100), (day, 20), (hours, 6)]);
    let mut ids: Vec<&String> = seen.iter().flat_map(|(_, ids)| ids).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 126);
}

/// An endpoint being deleted, and one out of service whose endpoint config is
/// gone (not described), were billed while in service, which may be within the
/// window, for a time nothing here tells: no window cost of $0, no $0 per 1,000
/// calls, no utilisation; counted in `window_unpriced`, with a note. A `Failed`
/// endpoint is not billed, and costs the window $0. The view says that endpoints
/// deleted within the window are not listed at all.
#[tokio::test]
async fn a_deleting_or_out_of_service_endpoint_has_no_window_cost_of_zero() {
    use aws_sdk_sagemaker::operation::describe_endpoint::DescribeEndpointOutput;
    use aws_sdk_sagemaker::operation::describe_endpoint_config::DescribeEndpointConfigError;
    use aws_sdk_sagemaker::operation::list_endpoints::ListEndpointsOutput;
    let list = mock!(aws_sdk_sagemaker::Client::list_endpoints).then_output(|| {
        ListEndpointsOutput::builder()
            .endpoints(summary("going", EndpointStatus::Deleting))
            .endpoints(summary("out", EndpointStatus::OutOfService))
            .endpoints(summary("broken", EndpointStatus::Failed))
            .endpoints(summary("serving", EndpointStatus::InService))
            .build()
    });
    let [a, b] = described("going", EndpointStatus::Deleting, 1);
    let [c, d] = described("broken", EndpointStatus::Failed, 1);
    let [e, f] = described("serving", EndpointStatus::InService, 1);
    let out = mock!(aws_sdk_sagemaker::Client::describe_endpoint)
        .match_requests(|r| r.endpoint_name() == Some("out"))
        .then_output(|| {
            DescribeEndpointOutput::builder()
                .endpoint_name("out")
                .endpoint_config_name("out-config")
                .endpoint_status(EndpointStatus::OutOfService)
                .production_variants(
                    ProductionVariantSummary::builder()
                        .variant_name("AllTraffic")
                        .current_instance_count(1)
                        .build(),
                )
                .build()
        });
    let out_config = mock!(aws_sdk_sagemaker::Client::describe_endpoint_config)
        .match_requests(|r| r.endpoint_config_name() == Some("out-config"))
        .then_error(|| {
            DescribeEndpointConfigError::generic(
                aws_smithy_types::error::ErrorMetadata::builder()
                    .code("ValidationException")
                    .message("Could not find endpoint configuration \"out-config\".")
                    .build(),
            )
        });
    // going (i0): 300 calls and 150 s of ModelLatency in the window; broken (i1)
    // none; serving (i2): 100 calls, 100 s.
    let metrics = metric_answers(&[("i0", 300.0), ("l0", 1.5e8), ("i2", 100.0), ("l2", 1e8)]);
    let account = account(
        &[&list, &a, &b, &c, &d, &e, &f, &out, &out_config],
        &[&metrics],
        &[],
    );
    let view = last_day(&account).await;
    let row = |name: &str| view.rows.iter().find(|r| r.endpoint == name).unwrap();

    // Deleting: not billed now ($0/h), but its 300 calls ran on an instance billed
    // at $0.23/h for a time not known: not 0 × 24 h = $0, nor $0 per 1,000, nor
    // 150 s ÷ 86,400 s = 0.0017 of an instance (underused).
    let going = row("going");
    assert_eq!(going.usd_per_hour, Some(Decimal::ZERO));
    assert_eq!(going.invocations, Some(300));
    assert_eq!(going.window_cost_usd, None, "{going:?}");
    assert_eq!(going.usd_per_1000_invocations, None, "{going:?}");
    assert_eq!(going.utilisation, None, "{going:?}");
    assert!(going.flags.is_empty(), "{:?}", going.flags);
    assert!(
        going
            .notes
            .iter()
            .any(|n| n.starts_with(
                "Deleting now: billed for its instances while it was in service, until then"
            ) && n.contains("its instance-hours in the window are not known from here")),
        "{:?}",
        going.notes
    );
    // Out of service, its config gone: not described, its window cost not known.
    let out = row("out");
    assert_eq!(out.variant, None);
    assert_eq!(out.usd_per_hour, Some(Decimal::ZERO));
    assert_eq!(out.window_cost_usd, None, "{out:?}");
    assert!(
        out.notes
            .iter()
            .any(|n| n.starts_with("OutOfService now: ")),
        "{:?}",
        out.notes
    );
    // Failed: not billed, $0 over the window, as before.
    assert_eq!(row("broken").window_cost_usd, Some(Decimal::ZERO));
    // The totals: serving's $0.23 × 24 h = $5.52 alone; going and out counted as
    // window costs not known, not as $0.
    assert_eq!(view.totals.window_cost_usd, Decimal::new(552, 2));
    assert_eq!(view.totals.window_unpriced, 2);
    assert_eq!(view.totals.unpriced, 0);
    assert_eq!(
        view.notes,
        [
            "endpoints deleted within the window are not listed (ListEndpoints lists the \
             endpoints there are now): what they cost in the window until their deletion is \
             not in the totals"
        ]
    );
}

/// [`summary`] of an endpoint created `created_h` hours before noon and last
/// modified `modified_h` hours before it.
fn summary_dated(
    name: &str,
    status: EndpointStatus,
    created_h: i64,
    modified_h: i64,
) -> EndpointSummary {
    summary_minutes(name, status, created_h * 60, modified_h * 60)
}

/// `Failed` is also an update's failure (SageMaker: "could not be created,
/// updated, or re-scaled"): an endpoint failed after serving in the window was
/// billed in it until it failed, for a time nothing here tells. One that served
/// calls in the window, or whose last modification (its failure) is in the window
/// long after its creation, has no window cost of $0, no $0 per 1,000 calls and
/// no utilisation, and is counted in `window_unpriced`; one that failed long
/// before the window, without calls, still costs it $0.
#[tokio::test]
async fn a_failed_endpoint_that_served_in_the_window_has_no_window_cost_of_zero() {
    use aws_sdk_sagemaker::operation::list_endpoints::ListEndpointsOutput;
    let list = mock!(aws_sdk_sagemaker::Client::list_endpoints).then_output(|| {
        ListEndpointsOutput::builder()
            // Created 1,000 h ago, its update failed 2 h ago.
            .endpoints(summary_dated("updated", EndpointStatus::Failed, 1000, 2))
            // Created and failed 1,000 h ago, yet CloudWatch counts calls.
            .endpoints(summary_dated("called", EndpointStatus::Failed, 1000, 1000))
            // Created 1,000 h ago, failed 500 h ago, no call since.
            .endpoints(summary_dated(
                "long-gone",
                EndpointStatus::Failed,
                1000,
                500,
            ))
            // Created 1,000 h ago, its update failed 3 h ago, no call counted.
            .endpoints(summary_dated("quiet", EndpointStatus::Failed, 1000, 3))
            .build()
    });
    let [a, b] = described("updated", EndpointStatus::Failed, 1);
    let [c, d] = described("called", EndpointStatus::Failed, 1);
    let [e, f] = described("long-gone", EndpointStatus::Failed, 1);
    let [g, h] = described("quiet", EndpointStatus::Failed, 1);
    // updated (i0) and called (i1): 300 calls and 150 s of ModelLatency each;
    // long-gone (i2) and quiet (i3): none.
    let metrics = metric_answers(&[("i0", 300.0), ("l0", 1.5e8), ("i1", 300.0), ("l1", 1.5e8)]);
    let account = account(&[&list, &a, &b, &c, &d, &e, &f, &g, &h], &[&metrics], &[]);
    let view = last_day(&account).await;
    let row = |name: &str| view.rows.iter().find(|r| r.endpoint == name).unwrap();

    // 1 × ml.m5.xlarge at $0.23/h in service until its update failed 2 h ago:
    // AWS billed at least 22 h × 0.23 = $5.06 of the window, not $0/h × 24 h = $0,
    // nor $0 per 1,000 calls, nor 150 s ÷ 86,400 s = 0.0017 of an instance
    // (underused). Its burn now is $0 (not billed while Failed).
    for name in ["updated", "called"] {
        let failed = row(name);
        assert_eq!(failed.usd_per_hour, Some(Decimal::ZERO), "{name}");
        assert_eq!(failed.invocations, Some(300), "{name}");
        assert_eq!(failed.window_cost_usd, None, "{failed:?}");
        assert_eq!(failed.usd_per_1000_invocations, None, "{failed:?}");
        assert_eq!(failed.utilisation, None, "{failed:?}");
        assert!(failed.flags.is_empty(), "{:?}", failed.flags);
        assert!(
            failed.notes.iter().any(|n| n.starts_with(
                "Failed now: billed for its instances while it was in service, until then"
            ) && n
                .contains("its instance-hours in the window are not known from here")),
            "{:?}",
            failed.notes
        );
    }
    // Its window figures are not known: no note that they take the deployment now.
    assert!(
        !row("updated")
            .notes
            .iter()
            .any(|n| n.starts_with("updated within the window")),
        "{:?}",
        row("updated").notes
    );
    // Its update failed 3 h ago: in service for the 21 h before, whether called
    // or not (21 × 0.23 = $4.83 at least), so not $0 either; idle is not said of
    // it, as its burn now is $0.
    let quiet = row("quiet");
    assert_eq!(quiet.invocations, Some(0));
    assert_eq!(quiet.window_cost_usd, None, "{quiet:?}");
    assert!(quiet.flags.is_empty(), "{:?}", quiet.flags);
    // Failed 500 h ago, no call in the window: not billed in it, $0.
    let gone = row("long-gone");
    assert_eq!(gone.window_cost_usd, Some(Decimal::ZERO), "{gone:?}");
    assert!(
        !gone
            .notes
            .iter()
            .any(|n| n.starts_with("Failed now: billed")),
        "{:?}",
        gone.notes
    );
    assert_eq!(view.totals.window_cost_usd, Decimal::ZERO);
    assert_eq!(view.totals.window_unpriced, 3);
    assert_eq!(view.totals.unpriced, 0);
}

#[tokio::test]
async fn a_failed_endpoint_whose_calls_cloudwatch_did_not_give_has_no_window_cost_of_zero() {
    use aws_sdk_sagemaker::operation::list_endpoints::ListEndpointsOutput;
    // Created and failed 1,000 h ago, as `called` above, which CloudWatch showed
    // served 300 calls in the window: with CloudWatch refused, nothing here
    // tells it from one that did not serve, so its window cost is not known
    // (it may have been billed 24 h × $0.23 = $5.52), not $0.
    let list = mock!(aws_sdk_sagemaker::Client::list_endpoints).then_output(|| {
        ListEndpointsOutput::builder()
            .endpoints(summary_dated("called", EndpointStatus::Failed, 1000, 1000))
            .build()
    });
    let [a, b] = described("called", EndpointStatus::Failed, 1);
    let account = account(&[&list, &a, &b], &[&metrics_refused()], &[]);
    let view = last_day(&account).await;
    let row = &view.rows[0];
    assert_eq!(row.window_cost_usd, None, "{row:?}");
    assert!(
        row.notes
            .iter()
            .any(|n| n.starts_with("Failed now: billed for its instances while it was in service")),
        "{:?}",
        row.notes
    );
    assert_eq!(view.totals.window_unpriced, 1);
}

/// [`summary`] of an endpoint created `created_min` minutes before noon and
/// last modified `modified_min` minutes before it.
fn summary_minutes(
    name: &str,
    status: EndpointStatus,
    created_min: i64,
    modified_min: i64,
) -> EndpointSummary {
    // Noon, 2026-12-02T12:00:00Z, in seconds since the epoch.
    let minutes_ago = |m: i64| 1_796_212_800 - m * 60;
    summary_at(
        name,
        status,
        minutes_ago(created_min),
        minutes_ago(modified_min),
    )
}

/// DescribeEndpoint and DescribeEndpointConfig of `name`: 1 × ml.g5.48xlarge,
/// its config's `ModelDataDownloadTimeoutInSeconds` and
/// `ContainerStartupHealthCheckTimeoutInSeconds` as given.
fn described_large(
    name: &'static str,
    status: EndpointStatus,
    download_s: Option<i32>,
    startup_s: Option<i32>,
) -> [Rule; 2] {
    described_as(
        name,
        status,
        1,
        ProductionVariantInstanceType::MlG548Xlarge,
        None,
        move |variant| {
            variant
                .set_model_data_download_timeout_in_seconds(download_s)
                .set_container_startup_health_check_timeout_in_seconds(startup_s)
        },
    )
}

/// An endpoint's creation may take as long as its config's timeouts let it (the
/// model data download's and the container startup health check's, up to an
/// hour each) and a margin of an hour: a `LastModifiedTime` within that of its
/// creation is its coming into service or its creation's failure, not an
/// update. A `Failed` endpoint whose creation failed after 1 h 45 min was never
/// billed ($0 in the window, not counted as unknown), and one that came into
/// service after 1 h 20 min was not updated in the window; a failure past the
/// timeouts and the margin is still an update's.
#[tokio::test]
async fn a_creation_as_slow_as_its_configs_timeouts_is_not_taken_for_an_update() {
    use aws_sdk_sagemaker::operation::list_endpoints::ListEndpointsOutput;
    let list = mock!(aws_sdk_sagemaker::Client::list_endpoints).then_output(|| {
        ListEndpointsOutput::builder()
            // Created 09:00; its health check never passed: Failed at 10:45.
            .endpoints(summary_minutes(
                "slow-create",
                EndpointStatus::Failed,
                180,
                75,
            ))
            // Created 09:00, in service at 10:20.
            .endpoints(summary_minutes(
                "slow-serve",
                EndpointStatus::InService,
                180,
                100,
            ))
            // Created 16:00 yesterday, its update failed at 10:00.
            .endpoints(summary_minutes(
                "failed-update",
                EndpointStatus::Failed,
                1200,
                120,
            ))
            // As slow-create, its config setting neither timeout.
            .endpoints(summary_minutes("untimed", EndpointStatus::Failed, 180, 75))
            .build()
    });
    // Each config's timeouts an hour (3,600 s), untimed's none.
    let timed = [
        ("slow-create", EndpointStatus::Failed),
        ("slow-serve", EndpointStatus::InService),
        ("failed-update", EndpointStatus::Failed),
    ];
    let described: Vec<Rule> = timed
        .into_iter()
        .flat_map(|(name, status)| described_large(name, status, Some(3600), Some(3600)))
        .chain(described_large(
            "untimed",
            EndpointStatus::Failed,
            None,
            None,
        ))
        .collect();
    let mut sagemaker = vec![&list];
    sagemaker.extend(&described);
    let account = account(&sagemaker, &[&no_metrics()], &[]);
    let view = last_day(&account).await;
    let row = |name: &str| view.rows.iter().find(|r| r.endpoint == name).unwrap();
    let said = |name: &str, start: &str| row(name).notes.iter().any(|n| n.starts_with(start));

    // Its creation may take 3,600 s (download) + 3,600 s (health check) + 1 h
    // (margin) = 3 h, to 12:00: failing at 10:45, after 1 h 45 min, its creation
    // failed. SageMaker bills an endpoint's instances from when it is in
    // service, which it never was: $0 over the window, not unknown.
    let slow = row("slow-create");
    assert_eq!(slow.usd_per_hour, Some(Decimal::ZERO));
    assert_eq!(slow.window_cost_usd, Some(Decimal::ZERO), "{slow:?}");
    assert!(
        !said("slow-create", "Failed now: billed"),
        "{:?}",
        slow.notes
    );
    // In service from 10:20, 1 h 20 min after its creation: no update. Its
    // window, from its creation at 09:00 to noon, is 3 h × $20.36 (1 ×
    // ml.g5.48xlarge, us-east-1) = $61.08.
    let serving = row("slow-serve");
    assert!(
        !said("slow-serve", "updated within the window"),
        "{:?}",
        serving.notes
    );
    assert_eq!(serving.window_cost_usd, Some(Decimal::new(6108, 2)));
    // Failed at 10:00, 18 h after its creation, past the 3 h its creation may
    // take: an update failed, after the endpoint was billed for a time not known.
    assert_eq!(row("failed-update").window_cost_usd, None);
    assert!(said("failed-update", "Failed now: billed"));
    // No timeouts set: an hour is all a creation is taken to take, so the same
    // failure at 1 h 45 min is taken for an update's.
    assert_eq!(row("untimed").window_cost_usd, None);
    // $61.08 in all; failed-update's and untimed's windows are not known.
    assert_eq!(view.totals.window_cost_usd, Decimal::new(6108, 2));
    assert_eq!(view.totals.window_unpriced, 2);
    assert_eq!(view.totals.unpriced, 0);
}

/// A serverless variant of 2 GB with a provisioned concurrency of `N`.
fn serverless_2gb_pc<const N: i32>() -> ProductionVariant {
    use aws_sdk_sagemaker::types::ProductionVariantServerlessConfig;
    ProductionVariant::builder()
        .variant_name("AllTraffic")
        .model_name("provisioned-model")
        .serverless_config(
            ProductionVariantServerlessConfig::builder()
                .memory_size_in_mb(2048)
                .max_concurrency(10)
                .provisioned_concurrency(N)
                .build(),
        )
        .build()
}

/// The view of `provisioned` (2 GB, provisioned concurrency 1) over 24 h, with
/// CloudWatch's `calls` and ModelLatency (`latency_us`), priced by `prices`.
async fn provisioned_view(
    calls: &'static [f64],
    latency_us: &'static [f64],
    prices: impl PriceSource + 'static,
) -> EndpointsView {
    provisioned_view_listed(listed_alone("provisioned"), calls, latency_us, prices).await
}

/// [`provisioned_view`], ListEndpoints answering by `list`.
async fn provisioned_view_listed(
    list: Rule,
    calls: &'static [f64],
    latency_us: &'static [f64],
    prices: impl PriceSource + 'static,
) -> EndpointsView {
    let [a, b] = described_variant("provisioned", serverless_2gb_pc::<1>, false);
    let metrics = metrics_of_variant_0(calls, latency_us);
    let account = Account {
        prices: std::sync::Arc::new(prices),
        ..account(&[&list, &a, &b], &[&metrics], &[])
    };
    last_day(&account).await
}

/// Calls beyond the provisioned concurrency are billed at the on-demand serverless
/// rate (docs/cost-model.md): a provisioned concurrency of n serves at most n × the
/// window's seconds of compute, and the rest of CloudWatch's ModelLatency is priced
/// on demand.
#[tokio::test]
async fn compute_beyond_the_provisioned_concurrency_is_priced_at_the_on_demand_rate() {
    // 100,000 calls and 500,000 s (5e11 µs) of ModelLatency over 24 h.
    let view = provisioned_view(&[100_000.0], &[5e11], Snapshot::bundled()).await;
    let row = &view.rows[0];
    assert_eq!(row.provisioned_concurrency, Some(1));
    // The bundled snapshot, us-east-1, 2 GB: provisioned concurrency standing
    // $0.00001/s, its inference $0.0000233/s, on demand $0.00004/s.
    // Standing: 1 × 0.00001 × 3,600 = $0.036/h; × 24 h = $0.864.
    assert_eq!(row.usd_per_hour, Some(Decimal::new(36, 3)));
    // Served by the provisioned concurrency: at most 1 × 86,400 s,
    // × 0.0000233 = $2.01312. Beyond it: 500,000 − 86,400 = 413,600 s,
    // × 0.00004 = $16.544. In all 0.864 + 2.01312 + 16.544 = $19.42112 (not
    // 0.864 + 500,000 × 0.0000233 = $12.514).
    assert_eq!(row.window_cost_usd, Some(Decimal::new(1_942_112, 5)));
    // Over 100,000 calls: 19.42112 × 1,000 ÷ 100,000 = $0.1942112 per 1,000.
    assert_eq!(
        row.usd_per_1000_invocations,
        Some(Decimal::new(1_942_112, 7))
    );
    assert!(row.flags.is_empty(), "{:?}", row.flags);
    let note = row
        .notes
        .iter()
        .find(|n| n.starts_with("serverless compute estimated from CloudWatch ModelLatency"))
        .unwrap_or_else(|| panic!("{:?}", row.notes));
    assert!(note.contains("(1 × 86400 s)"), "{note}");
    assert!(note.contains("413600 s beyond it"), "{note}");
    assert!(note.contains("a lower bound"), "{note}");
    assert_eq!(view.totals.window_cost_usd, Decimal::new(1_942_112, 5));
}

/// The provisioned-concurrency split takes today's provisioned concurrency for
/// the whole window: a lower bound only when the endpoint was not updated within
/// it. Updated an hour ago (from a provisioned concurrency of 4, say), the note
/// says the figure can overstate or understate, and does not call it a lower
/// bound.
#[tokio::test]
async fn a_provisioned_split_updated_within_the_window_is_not_called_a_lower_bound() {
    use aws_sdk_sagemaker::operation::list_endpoints::ListEndpointsOutput;
    // 300,000 s (3e11 µs) of ModelLatency over 24 h, the endpoint created 1,000 h
    // ago and modified 1 h ago.
    let list = mock!(aws_sdk_sagemaker::Client::list_endpoints).then_output(|| {
        ListEndpointsOutput::builder()
            .endpoints(summary_dated(
                "provisioned",
                EndpointStatus::InService,
                1000,
                1,
            ))
            .build()
    });
    let view = provisioned_view_listed(list, &[30_000.0], &[3e11], Snapshot::bundled()).await;
    let row = &view.rows[0];
    // Today's provisioned concurrency of 1 for all 24 h (bundled us-east-1, 2 GB:
    // standing $0.00001/s, inference $0.0000233/s, on demand $0.00004/s):
    // 0.036/h × 24 = 0.864, + 86,400 s × 0.0000233 = 2.01312, + (300,000 −
    // 86,400) = 213,600 s × 0.00004 = 8.544: $11.42112. Had it been 4 until 1 h
    // ago, evenly over those 23 h, AWS billed 4 × 82,800 s × 0.00001 + 1 × 3,600 s
    // × 0.00001 = 3.348, + 300,000 × 0.0000233 = 6.99 (all within 4 × 82,800 s):
    // $10.338, less than the figure: no lower bound.
    assert_eq!(row.window_cost_usd, Some(Decimal::new(1_142_112, 5)));
    assert!(
        row.notes
            .iter()
            .any(|n| n.starts_with("updated within the window at ")),
        "{:?}",
        row.notes
    );
    assert!(
        !row.notes.iter().any(|n| n.contains("a lower bound")),
        "{:?}",
        row.notes
    );
    let note = row
        .notes
        .iter()
        .find(|n| n.starts_with("serverless compute estimated from CloudWatch ModelLatency"))
        .unwrap_or_else(|| panic!("{:?}", row.notes));
    assert!(
        note.contains("today's (1) is taken for the whole window")
            && note.contains("can overstate or understate"),
        "{note}"
    );

    // Not updated within the window (created and modified long before it): the
    // same figure, a lower bound.
    let view = provisioned_view(&[30_000.0], &[3e11], Snapshot::bundled()).await;
    let row = &view.rows[0];
    assert_eq!(row.window_cost_usd, Some(Decimal::new(1_142_112, 5)));
    assert!(
        row.notes.iter().any(|n| n.contains("a lower bound")),
        "{:?}",
        row.notes
    );
}

/// Without the on-demand serverless rate, compute beyond the provisioned
/// concurrency is unpriced, as any compute without its rate is: never $0. Below
/// the cap the rate is not needed.
#[tokio::test]
async fn compute_beyond_the_provisioned_concurrency_without_the_on_demand_rate_is_unpriced() {
    let provisioned_rates = || OnlyThese(provisioned_2gb_rates(Decimal::new(1, 5)));
    // 500,000 s of ModelLatency: 413,600 s beyond the 1 × 86,400 s served.
    let view = provisioned_view(&[100_000.0], &[5e11], provisioned_rates()).await;
    let row = &view.rows[0];
    assert_eq!(row.flags, [Flag::Unpriced]);
    assert_eq!(row.usd_per_hour, None);
    assert_eq!(row.window_cost_usd, None);
    assert_eq!(row.usd_per_1000_invocations, None);
    let reason = row.unpriced_reason.as_deref().unwrap_or_default();
    assert!(
        reason.starts_with(
            "413600 s of compute in the window (CloudWatch ModelLatency) beyond the 86400 s \
             its provisioned concurrency of 1 serves over 86400 s is billed at the on-demand \
             serverless rate, which is unknown"
        ),
        "{reason}"
    );
    assert_eq!(view.totals.unpriced, 1);

    // 50,000 s, within the 86,400 s: 0.864 + 50,000 × 0.0000233 = 0.864 + 1.165
    // = $2.029, the on-demand rate's absence noted.
    let view = provisioned_view(&[10_000.0], &[5e10], provisioned_rates()).await;
    let row = &view.rows[0];
    assert!(row.flags.is_empty(), "{:?}", row.flags);
    assert_eq!(row.window_cost_usd, Some(Decimal::new(2029, 3)));
    assert!(
        row.notes
            .iter()
            .any(|n| n.starts_with("the on-demand serverless rate is unknown")),
        "{:?}",
        row.notes
    );
}

/// A price source's $0 for an instance type is no price (docs/cost-model.md): the
/// row is unpriced with the reason, as with no rate at all, never a burn of $0.
#[tokio::test]
async fn a_price_sources_zero_instance_rate_leaves_the_row_unpriced_not_free() {
    let list = listed_alone("zero-rated");
    let [a, b] = described_as(
        "zero-rated",
        EndpointStatus::InService,
        2,
        ProductionVariantInstanceType::MlG5Xlarge,
        None,
        |variant| variant,
    );
    let metrics = no_metrics();
    let account = Account {
        prices: std::sync::Arc::new(OnlyThese(vec![(
            PriceKey::hosting("us-east-1", "ml.g5.xlarge"),
            Decimal::ZERO,
        )])),
        ..account(&[&list, &a, &b], &[&metrics], &[])
    };
    let view = last_day(&account).await;
    let row = &view.rows[0];
    // AWS bills 2 × ml.g5.xlarge (real-time, us-east-1, $1.408 an instance-hour)
    // 2 × 1.408 = $2.816 an hour, 24 × 2.816 = $67.584 over the window. At the
    // source's $0 the row read $0 and $0, unflagged; the rate is not known, so
    // neither figure is.
    assert_eq!(row.usd_per_hour, None);
    assert_eq!(row.window_cost_usd, None);
    assert_eq!(row.flags, [Flag::Unpriced]);
    let reason = row.unpriced_reason.as_deref().unwrap_or_default();
    assert!(
        reason.starts_with(
            "the price source gave 0 USD per unit for hosting ml.g5.xlarge in us-east-1"
        ),
        "{reason}"
    );
    assert_eq!(view.totals.unpriced, 1);
    assert_eq!(view.totals.usd_per_hour, Decimal::ZERO);
    assert_eq!(view.totals.window_cost_usd, Decimal::ZERO);
}

/// The provisioned concurrency rates of 2 GB in us-east-1: `standing` USD a
/// second provisioned, and $0.0000233 a second of its usage.
fn provisioned_2gb_rates(standing: Decimal) -> Vec<(PriceKey, Decimal)> {
    let (region, memory_gb) = ("us-east-1".to_owned(), 2);
    vec![
        (
            PriceKey::ProvisionedConcurrency {
                region: region.clone(),
                memory_gb,
            },
            standing,
        ),
        (
            PriceKey::ProvisionedConcurrencyUsage { region, memory_gb },
            Decimal::new(233, 7),
        ),
    ]
}

/// A price source's rate beyond any SageMaker price is no price either: the row
/// is unpriced with the reason, and its arithmetic never overflows.
#[tokio::test]
async fn a_price_sources_absurd_provisioned_concurrency_rate_leaves_the_row_unpriced_not_a_panic() {
    let list = listed_alone("provisioned");
    let [a, b] = described_variant("provisioned", serverless_2gb_pc::<8>, false);
    let metrics = no_metrics();
    // 10²⁵ USD a second: a garbled answer.
    let mut rates = provisioned_2gb_rates(Decimal::from_i128_with_scale(10i128.pow(25), 0));
    rates.push((
        PriceKey::Serverless {
            region: "us-east-1".to_owned(),
            memory_gb: 2,
        },
        Decimal::new(4, 5),
    ));
    let account = Account {
        prices: std::sync::Arc::new(OnlyThese(rates)),
        ..account(&[&list, &a, &b], &[&metrics], &[])
    };
    // The standing burn at that rate, 10²⁵ × 8 × 3,600 = 2.88 × 10²⁹ USD an hour,
    // is beyond what a Decimal holds (about 7.9 × 10²⁸): it panicked. AWS bills 8
    // provisioned 2 GB at $0.00001 a second (us-east-1) 8 × 0.00001 × 3,600 =
    // $0.288 an hour; the source's rate is no price, so the burn is not known.
    let view = last_day(&account).await;
    let row = &view.rows[0];
    assert_eq!(row.provisioned_concurrency, Some(8));
    assert_eq!(row.usd_per_hour, None);
    assert_eq!(row.window_cost_usd, None);
    assert_eq!(row.flags, [Flag::Unpriced]);
    let reason = row.unpriced_reason.as_deref().unwrap_or_default();
    assert!(
        reason.contains(
            "the price source gave 10000000000000000000000000 USD per unit for provisioned \
             concurrency"
        ) && reason.contains("not a price"),
        "{reason}"
    );
    assert_eq!(view.totals.unpriced, 1);
}

/// The bundled snapshot's rates, ml.m5.xlarge's carrying its resources (4 vCPUs,
/// 16 GiB, no accelerator) as a live rate does.
#[derive(Debug)]
struct M5WithResources;

impl PriceSource for M5WithResources {
    fn price<'a>(
        &'a self,
        key: &'a PriceKey,
    ) -> crate::pricing::BoxFuture<'a, Result<crate::pricing::Rate, crate::pricing::PriceError>>
    {
        Box::pin(async move {
            let rate = Snapshot::bundled().price(key).await?;
            Ok(match key {
                PriceKey::Hosting { instance_type, .. } if instance_type == "ml.m5.xlarge" => {
                    rate.with_instance(crate::pricing::InstanceResources::new(4, 16, 0))
                }
                _ => rate,
            })
        })
    }
}

/// An inference component created 2 hours ago on an endpoint a year older: its
/// copies have held their share of the instances for 2 hours, and its calls are
/// counted since then.
#[tokio::test]
async fn an_inference_components_window_starts_at_its_own_creation() {
    use aws_sdk_cloudwatch::operation::get_metric_data::GetMetricDataOutput;
    use aws_sdk_cloudwatch::types::MetricDataResult;
    use aws_sdk_sagemaker::operation::describe_endpoint::DescribeEndpointOutput;
    use aws_sdk_sagemaker::operation::describe_endpoint_config::DescribeEndpointConfigOutput;
    use aws_sdk_sagemaker::operation::describe_inference_component::DescribeInferenceComponentOutput;
    use aws_sdk_sagemaker::operation::list_inference_components::ListInferenceComponentsOutput;
    use aws_sdk_sagemaker::types::{
        InferenceComponentComputeResourceRequirements, InferenceComponentRuntimeConfigSummary,
        InferenceComponentSpecificationSummary, InferenceComponentSummary,
    };
    let two_hours_ago = aws_smithy_types::DateTime::from_secs(1_796_212_800 - 7200);
    let list = listed_alone("hosted");
    let endpoint = mock!(aws_sdk_sagemaker::Client::describe_endpoint).then_output(|| {
        DescribeEndpointOutput::builder()
            .endpoint_name("hosted")
            .endpoint_config_name("hosted-config")
            .endpoint_status(EndpointStatus::InService)
            .production_variants(
                ProductionVariantSummary::builder()
                    .variant_name("AllTraffic")
                    .current_instance_count(2)
                    .build(),
            )
            .build()
    });
    let config = mock!(aws_sdk_sagemaker::Client::describe_endpoint_config).then_output(|| {
        DescribeEndpointConfigOutput::builder()
            .endpoint_config_name("hosted-config")
            .production_variants(
                ProductionVariant::builder()
                    .variant_name("AllTraffic")
                    .instance_type(ProductionVariantInstanceType::MlM5Xlarge)
                    .initial_instance_count(2)
                    .build(),
            )
            .build()
    });
    let components =
        mock!(aws_sdk_sagemaker::Client::list_inference_components).then_output(move || {
            ListInferenceComponentsOutput::builder()
                .inference_components(
                    InferenceComponentSummary::builder()
                        .inference_component_name("chat")
                        .inference_component_arn("arn:ic/chat")
                        .endpoint_name("hosted")
                        .endpoint_arn("arn:endpoint/hosted")
                        .variant_name("AllTraffic")
                        .creation_time(two_hours_ago)
                        .last_modified_time(two_hours_ago)
                        .build(),
                )
                .build()
        });
    // One copy of 4 vCPUs and 8 GiB: all of an ml.m5.xlarge's 4 vCPUs, so a whole
    // instance of the 2.
    let chat =
        mock!(aws_sdk_sagemaker::Client::describe_inference_component).then_output(move || {
            DescribeInferenceComponentOutput::builder()
                .inference_component_name("chat")
                .inference_component_arn("arn:ic/chat")
                .endpoint_name("hosted")
                .endpoint_arn("arn:endpoint/hosted")
                .variant_name("AllTraffic")
                .specification(
                    InferenceComponentSpecificationSummary::builder()
                        .compute_resource_requirements(
                            InferenceComponentComputeResourceRequirements::builder()
                                .number_of_cpu_cores_required(4.0)
                                .min_memory_required_in_mb(8192)
                                .build(),
                        )
                        .build(),
                )
                .runtime_config(
                    InferenceComponentRuntimeConfigSummary::builder()
                        .current_copy_count(1)
                        .desired_copy_count(1)
                        .build(),
                )
                .creation_time(two_hours_ago)
                .last_modified_time(two_hours_ago)
                .build()
        });
    // The variant (i0) and the component (i1), whatever the span asked: 200 calls
    // and 3,600 s of ModelLatency, all within the component's 2 hours.
    let metrics =
        mock!(aws_sdk_cloudwatch::Client::get_metric_data).then_compute_output(|request| {
            let mut output = GetMetricDataOutput::builder();
            for query in request.metric_data_queries() {
                let id = query.id().unwrap_or_default();
                let value = if id.starts_with('i') { 200.0 } else { 3.6e9 };
                output = output
                    .metric_data_results(MetricDataResult::builder().id(id).values(value).build());
            }
            output.build()
        });
    let account = Account {
        prices: std::sync::Arc::new(M5WithResources),
        ..account(
            &[&list, &endpoint, &config, &components, &chat],
            &[&metrics],
            &[],
        )
    };
    let view = last_day(&account).await;
    let (variant, chat) = (&view.rows[0], &view.rows[1]);
    assert_eq!(chat.inference_component.as_deref(), Some("chat"));
    // The variant: 2 × $0.23 = $0.46/h over the whole 24 h: $11.04.
    assert_eq!(variant.window_cost_usd, Some(Decimal::new(1104, 2)));
    // chat: 1 copy of 1 instance on 2 = 0.5 of the variant: $0.23/h, for the 2 h
    // since its creation: $0.46 (not 24 h × 0.23 = $5.52); over its 200 calls
    // 0.46 × 1,000 ÷ 200 = $2.30 per 1,000 (not $27.60); utilisation 3,600 s ÷
    // (1 copy × 7,200 s) = 0.5 (not 3,600 ÷ 86,400 = 0.0417).
    assert_eq!(chat.reserved_share, Some(Decimal::new(5, 1)));
    assert_eq!(chat.usd_per_hour, Some(Decimal::new(23, 2)));
    assert_eq!(chat.window_hours, Decimal::from(2));
    assert_eq!(chat.window_cost_usd, Some(Decimal::new(46, 2)));
    assert_eq!(chat.invocations, Some(200));
    assert_eq!(chat.usd_per_1000_invocations, Some(Decimal::new(23, 1)));
    assert_eq!(chat.utilisation, Some(Decimal::new(5, 1)));
    assert!(chat.flags.is_empty(), "{:?}", chat.flags);
    // Asked over its own span, in a request of its own.
    assert_eq!(metrics.num_calls(), 2);
}

/// How many calls a page-token mock answers with a next token: past it, none, so
/// that a loop the guard no longer stops ends there and fails the test's
/// assertions rather than hang CI (a timeout would not fire: the mocked calls
/// never wait, so the loop never yields to it).
const PAGE_TOKEN_CALLS: usize = 10;

/// The next token `answer` gives to `sent`, or none once `calls` has passed
/// [`PAGE_TOKEN_CALLS`].
fn bounded_token(
    calls: &std::sync::atomic::AtomicUsize,
    sent: Option<&str>,
    answer: fn(Option<&str>) -> &'static str,
) -> Option<&'static str> {
    let before = calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    (before < PAGE_TOKEN_CALLS).then(|| answer(sent))
}

/// GetMetricData over one target, from a day before noon to noon.
async fn metric_pages(client: &aws_sdk_cloudwatch::Client) -> Result<(), AccountError> {
    let targets = [metrics::Target {
        endpoint: "e".into(),
        variant: "AllTraffic".into(),
        component: None,
        start: noon() - Duration::from_secs(86_400),
    }];
    metrics::fetch(client, &targets, noon()).await.map(|_| ())
}

/// GetCostAndUsage over 2026-11-29.
async fn bill_pages(client: &aws_sdk_costexplorer::Client) -> Result<(), AccountError> {
    let since = NaiveDate::from_ymd_opt(2026, 11, 29).unwrap();
    let until = since + chrono::Days::new(1);
    bill::fetch(client, "us-east-1", CALLER, since, until, None)
        .await
        .map(|_| ())
}

/// GetMetricData and GetCostAndUsage answering the token their pages are asked
/// with by `answer`, at most [`PAGE_TOKEN_CALLS`] times: what each read ends
/// with, and how many calls each made.
async fn paged_by(
    answer: fn(Option<&str>) -> &'static str,
) -> [(Result<(), AccountError>, usize); 2] {
    use aws_sdk_cloudwatch::operation::get_metric_data::GetMetricDataOutput;
    use aws_sdk_cloudwatch::types::MetricDataResult;
    use aws_sdk_costexplorer::operation::get_cost_and_usage::GetCostAndUsageOutput;
    use std::sync::Arc;
    use std::sync::atomic::AtomicUsize;

    let calls = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&calls);
    let metrics =
        mock!(aws_sdk_cloudwatch::Client::get_metric_data).then_compute_output(move |request| {
            GetMetricDataOutput::builder()
                .metric_data_results(MetricDataResult::builder().id("i0").values(1.0).build())
                .set_next_token(
                    bounded_token(&counted, request.next_token(), answer).map(str::to_owned),
                )
                .build()
        });
    let read = metric_pages(&mocked_client!(aws_sdk_cloudwatch, &[&metrics])).await;
    assert_eq!(
        metrics.num_calls(),
        calls.load(std::sync::atomic::Ordering::SeqCst)
    );
    let metric_read = (read, metrics.num_calls());

    let calls = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&calls);
    let bill = mock!(aws_sdk_costexplorer::Client::get_cost_and_usage).then_compute_output(
        move |request| {
            GetCostAndUsageOutput::builder()
                .set_next_page_token(
                    bounded_token(&counted, request.next_page_token(), answer).map(str::to_owned),
                )
                .build()
        },
    );
    let read = bill_pages(&mocked_client!(aws_sdk_costexplorer, &[&bill])).await;
    assert_eq!(
        bill.num_calls(),
        calls.load(std::sync::atomic::Ordering::SeqCst)
    );
    [metric_read, (read, bill.num_calls())]
}

/// Whether `read` ended with the repeated-token error naming `operation`.
fn repeated_token(read: &Result<(), AccountError>, operation: &str) -> bool {
    matches!(read, Err(AccountError::RepeatedPageToken { operation: o }) if *o == operation)
}

/// GetMetricData and GetCostAndUsage answering, page after page, the token they
/// were sent: an error naming the API after the second page, not a loop without
/// end.
#[tokio::test]
async fn a_page_token_answered_back_as_the_next_one_is_an_error_not_a_loop() {
    let [(metric_read, metric_calls), (bill_read, bill_calls)] = paged_by(|_| "again").await;
    assert!(
        repeated_token(&metric_read, "GetMetricData"),
        "{metric_read:?}"
    );
    let message = metric_read.unwrap_err().to_string();
    assert!(
        message.starts_with(
            "GetMetricData answered a page token it had already been sent as its next page's"
        ),
        "{message}"
    );
    // The first page (no token) and the second (`again`, answered `again`).
    assert_eq!(metric_calls, 2);
    assert!(
        repeated_token(&bill_read, "GetCostAndUsage"),
        "{bill_read:?}"
    );
    assert_eq!(bill_calls, 2);
}

/// A token answered again pages after it was sent (none → `a`, `a` → `b`,
/// `b` → `a`): the same error after the third page, not a loop through `a` and
/// `b` without end.
#[tokio::test]
async fn a_page_token_answered_again_pages_later_is_an_error_not_a_loop() {
    let [(metric_read, metric_calls), (bill_read, bill_calls)] = paged_by(|sent| match sent {
        None | Some("b") => "a",
        Some(_) => "b",
    })
    .await;
    assert!(
        repeated_token(&metric_read, "GetMetricData"),
        "{metric_read:?}"
    );
    assert_eq!(metric_calls, 3);
    assert!(
        repeated_token(&bill_read, "GetCostAndUsage"),
        "{bill_read:?}"
    );
    assert_eq!(bill_calls, 3);
}

/// [`described_large`], its endpoint config created `config_min` minutes
/// before noon (DescribeEndpointConfig's `CreationTime`).
fn described_large_config_created(
    name: &'static str,
    status: EndpointStatus,
    download_s: Option<i32>,
    startup_s: Option<i32>,
    config_min: i64,
) -> [Rule; 2] {
    use aws_sdk_sagemaker::operation::describe_endpoint_config::DescribeEndpointConfigOutput;
    let [endpoint, _] = described_large(name, status, download_s, startup_s);
    let config = mock!(aws_sdk_sagemaker::Client::describe_endpoint_config)
        .match_requests(move |r| r.endpoint_config_name() == Some(&format!("{name}-config")))
        .then_output(move || {
            DescribeEndpointConfigOutput::builder()
                .endpoint_config_name(format!("{name}-config"))
                .creation_time(aws_smithy_types::DateTime::from_secs(
                    1_796_212_800 - config_min * 60,
                ))
                .production_variants(
                    ProductionVariant::builder()
                        .variant_name("AllTraffic")
                        .model_name(format!("{name}-model"))
                        .instance_type(ProductionVariantInstanceType::MlG548Xlarge)
                        .initial_instance_count(1)
                        .set_model_data_download_timeout_in_seconds(download_s)
                        .set_container_startup_health_check_timeout_in_seconds(startup_s)
                        .build(),
                )
                .build()
        });
    [endpoint, config]
}

/// The timeouts that tell how long an endpoint's creation may take are those of
/// the config it was created with. One whose config was created after it (it
/// came with an update) was not created with it: its creation is taken to take
/// the hour's margin alone, and a `LastModifiedTime` past that is an update.
#[tokio::test]
async fn an_endpoint_updated_to_a_config_with_long_timeouts_is_still_seen_updated() {
    use aws_sdk_sagemaker::operation::list_endpoints::ListEndpointsOutput;
    let list = mock!(aws_sdk_sagemaker::Client::list_endpoints).then_output(|| {
        ListEndpointsOutput::builder()
            // Created 09:00 on a config of no timeouts, updated at 09:40 to one
            // created at 09:35 (both timeouts 3,600 s), modified 10:50.
            .endpoints(summary_minutes(
                "updated",
                EndpointStatus::InService,
                180,
                70,
            ))
            // Created 09:00 on its config of 08:55 (both timeouts 3,600 s), in
            // service at 10:50.
            .endpoints(summary_minutes(
                "created-slowly",
                EndpointStatus::InService,
                180,
                70,
            ))
            .build()
    });
    let [a, b] = described_large_config_created(
        "updated",
        EndpointStatus::InService,
        Some(3600),
        Some(3600),
        145,
    );
    let [c, d] = described_large_config_created(
        "created-slowly",
        EndpointStatus::InService,
        Some(3600),
        Some(3600),
        185,
    );
    let account = account(&[&list, &a, &b, &c, &d], &[&no_metrics()], &[]);
    let view = last_day(&account).await;
    let row = |name: &str| view.rows.iter().find(|r| r.endpoint == name).unwrap();
    let said = |name: &str, start: &str| row(name).notes.iter().any(|n| n.starts_with(start));

    // Its config is younger than it: its creation is taken to take an hour, to
    // 10:00, and its LastModifiedTime at 10:50, 1 h 50 min after its
    // creation, is an update (not its coming into service, as the config's
    // 3,600 s + 3,600 s + 1 h = 3 h would have it). Its window, from its
    // creation at 09:00 to noon at the deployment described now, 1 ×
    // ml.g5.48xlarge (us-east-1, $20.36/h): 3 h × 20.36 = $61.08.
    let updated = row("updated");
    assert!(
        said(
            "updated",
            "updated within the window at 2026-12-02T10:50:00Z"
        ),
        "{:?}",
        updated.notes
    );
    assert_eq!(updated.window_cost_usd, Some(Decimal::new(6108, 2)));
    // Created with its config: 3 h for its creation, to 12:00, so 10:50 is
    // its coming into service, no update. Counted from its creation, as every
    // endpoint in service is (a change soon after it is not told from its
    // coming into service): 3 h × 20.36 = $61.08.
    let slow = row("created-slowly");
    assert!(
        !said("created-slowly", "updated within the window"),
        "{:?}",
        slow.notes
    );
    assert_eq!(slow.window_cost_usd, Some(Decimal::new(6108, 2)));
}

/// DescribeEndpoint and DescribeEndpointConfig of `name` being created, as AWS
/// describes it: `Creating`, no ProductionVariants, its fleet (AllTraffic, 1 ×
/// ml.g5.xlarge, up already) as the pending deployment of its own config;
/// asynchronous when `asynchronous`.
fn being_created(name: &'static str, asynchronous: bool) -> [Rule; 2] {
    use aws_sdk_sagemaker::operation::describe_endpoint::DescribeEndpointOutput;
    use aws_sdk_sagemaker::operation::describe_endpoint_config::DescribeEndpointConfigOutput;
    use aws_sdk_sagemaker::types::{
        AsyncInferenceConfig, AsyncInferenceOutputConfig, PendingDeploymentSummary,
        PendingProductionVariantSummary,
    };
    let endpoint = mock!(aws_sdk_sagemaker::Client::describe_endpoint)
        .match_requests(move |r| r.endpoint_name() == Some(name))
        .then_output(move || {
            DescribeEndpointOutput::builder()
                .endpoint_name(name)
                .endpoint_config_name(format!("{name}-config"))
                .endpoint_status(EndpointStatus::Creating)
                .pending_deployment_summary(
                    PendingDeploymentSummary::builder()
                        .endpoint_config_name(format!("{name}-config"))
                        .production_variants(
                            PendingProductionVariantSummary::builder()
                                .variant_name("AllTraffic")
                                .instance_type(ProductionVariantInstanceType::MlG5Xlarge)
                                .current_instance_count(1)
                                .desired_instance_count(1)
                                .build(),
                        )
                        .build(),
                )
                .build()
        });
    let config = mock!(aws_sdk_sagemaker::Client::describe_endpoint_config)
        .match_requests(move |r| r.endpoint_config_name() == Some(&format!("{name}-config")))
        .then_output(move || {
            DescribeEndpointConfigOutput::builder()
                .endpoint_config_name(format!("{name}-config"))
                .production_variants(
                    ProductionVariant::builder()
                        .variant_name("AllTraffic")
                        .model_name(format!("{name}-model"))
                        .instance_type(ProductionVariantInstanceType::MlG5Xlarge)
                        .initial_instance_count(1)
                        .build(),
                )
                .set_async_inference_config(asynchronous.then(|| {
                    AsyncInferenceConfig::builder()
                        .output_config(
                            AsyncInferenceOutputConfig::builder()
                                .s3_output_path("s3://bucket/out/")
                                .build(),
                        )
                        .build()
                }))
                .build()
        });
    [endpoint, config]
}

/// Endpoints being created stand at no instance and burn nothing (ml.g5.xlarge
/// $1.41/h, async or not: 0 × 1.41 = $0/h, $0 over the window); they are not
/// taken for endpoints scaled to zero (whose window cost is not known), even
/// one whose name served 500 calls in the window before it was deleted and
/// created again, nor is their fleet taken for a deployment's new one.
#[tokio::test]
async fn endpoints_being_created_burn_nothing_and_are_not_taken_for_scaled_to_zero() {
    use aws_sdk_sagemaker::operation::list_endpoints::ListEndpointsOutput;
    let list = mock!(aws_sdk_sagemaker::Client::list_endpoints).then_output(|| {
        ListEndpointsOutput::builder()
            .endpoints(summary("queue", EndpointStatus::Creating))
            .endpoints(summary("starting", EndpointStatus::Creating))
            .build()
    });
    let [a, b] = being_created("queue", true);
    let [c, d] = being_created("starting", false);
    // Only the real-time endpoint is counted by CloudWatch (`i0`, `l0`).
    let metrics = metrics_of_variant_0(&[500.0], &[1e8]);
    let g5 = |key: fn(String) -> PriceKey| (key("ml.g5.xlarge".into()), Decimal::new(141, 2));
    let account = Account {
        prices: std::sync::Arc::new(OnlyThese(vec![
            g5(|instance_type| PriceKey::AsyncInference {
                region: "us-east-1".into(),
                instance_type,
            }),
            g5(|instance_type| PriceKey::hosting("us-east-1", &instance_type)),
        ])),
        ..account(&[&list, &a, &b, &c, &d], &[&metrics], &[])
    };
    let view = last_day(&account).await;
    assert_eq!(view.rows.len(), 2, "{:?}", view.rows);
    for row in &view.rows {
        assert!(!row.deploying, "{row:?}");
        assert_eq!(row.instance_count, Some(0), "{row:?}");
        assert_eq!(row.usd_per_hour, Some(Decimal::ZERO), "{row:?}");
        assert_eq!(row.window_cost_usd, Some(Decimal::ZERO), "{row:?}");
        assert!(row.flags.is_empty(), "{row:?}");
        assert_eq!(row.notes[0], "not billed while Creating", "{row:?}");
        assert!(
            !row.notes.iter().any(|n| n.contains("scaled to zero")),
            "{row:?}"
        );
    }
    assert_eq!(view.totals.window_unpriced, 0);
}

#[test]
fn a_receipt_with_a_standing_rate_beyond_what_a_receipt_can_carry_refuses_its_ledger() {
    // A standing rate of 79228162514264337593543950335 USD an hour (Decimal's
    // largest) is beyond the ±10¹² a receipt can carry (docs/account.md): the
    // ledger is refused, named, whether or not the receipt prices any instance
    // time (this one carries no line), and nothing panics adding the parts up.
    let cost = amortized_lines_receipt(
        "huge",
        "2026-11-29T12:00:00Z",
        ("ml.m5.xlarge", 1),
        serde_json::json!([]),
        "1",
        standing(&[
            ("ml.m5.xlarge", 1, "79228162514264337593543950335"),
            ("ml.g5.xlarge", 1, "1"),
        ]),
    );
    let err = Metered::new("us-east-1").add("l.jsonl", &cost).unwrap_err();
    match err {
        AccountError::Ledger { file, reason } => {
            assert_eq!(file, "l.jsonl");
            assert!(reason.contains("a standing rate"), "{reason}");
        }
        other => panic!("expected a refused ledger, got {other:?}"),
    }
}

#[test]
fn standing_parts_of_u32_max_instances_each_add_up_without_overflowing() {
    // Two parts of 4294967295 instances each: 8589934590 instances in all, more
    // than a u32 holds. Their rates are within what a receipt carries, so the
    // receipt is taken (its 1 instance-hour at $1 metered), not panicked on.
    let cost = amortized_lines_receipt(
        "many",
        "2026-11-29T12:00:00Z",
        ("ml.m5.xlarge", u32::MAX),
        serde_json::json!([priced_hours("1", "1", "1")]),
        "1",
        standing(&[
            ("ml.m5.xlarge", u32::MAX, "1"),
            ("ml.g5.xlarge", u32::MAX, "1"),
        ]),
    );
    let mut metered = Metered::new("us-east-1");
    metered.add("l.jsonl", &cost).unwrap();
}
