//! The account view with mocked AWS answers: what no emulator answers here
//! (endpoints in every status, several pages of each API).

use super::*;
use crate::pricing::Snapshot;
use aws_config::BehaviorVersion;
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

fn interceptor(rules: &[&Rule]) -> MockResponseInterceptor {
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
        prices: std::sync::Arc::new(Snapshot::bundled()),
        time: SharedTimeSource::new(ManualTimeSource::new(noon())),
    }
}

fn summary(name: &str, status: EndpointStatus) -> EndpointSummary {
    EndpointSummary::builder()
        .endpoint_name(name)
        .endpoint_arn(format!(
            "arn:aws:sagemaker:us-east-1:123456789012:endpoint/{name}"
        ))
        .endpoint_status(status)
        .creation_time(aws_smithy_types::DateTime::from_secs(1_700_000_000))
        .last_modified_time(aws_smithy_types::DateTime::from_secs(1_700_000_000))
        .build()
}

/// DescribeEndpoint and DescribeEndpointConfig of `name`: `count` × ml.m5.xlarge.
fn described(name: &'static str, status: EndpointStatus, count: i32) -> [Rule; 2] {
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
                        .instance_type(ProductionVariantInstanceType::MlM5Xlarge)
                        .initial_instance_count(count)
                        .build(),
                )
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
                .build()
        });
    let account = account(
        &[&first_page, &second_page, &a, &b, &c, &d, &e, &f],
        &[&metrics_first, &metrics_second],
        &[],
    );
    let view = account
        .endpoints(&EndpointsOptions::new(Window::hours(24)))
        .await
        .unwrap();
    assert_eq!(first_page.num_calls() + second_page.num_calls(), 2);
    assert_eq!(metrics_first.num_calls() + metrics_second.num_calls(), 2);
    assert_eq!(view.totals.endpoints, 3);
    let row = |name: &str| view.rows.iter().find(|r| r.endpoint == name).unwrap();

    // In service: 2 × $0.23/h; 20 calls over the window ($11.04): $552 per 1,000.
    let serving = row("serving");
    assert_eq!(serving.usd_per_hour, Some(Decimal::new(46, 2)));
    assert_eq!(serving.invocations, Some(20));
    assert_eq!(serving.usd_per_1000_invocations, Some(Decimal::new(552, 0)));
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
                    .metrics("UnblendedCost", metric(usd, "USD"))
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
