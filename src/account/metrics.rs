//! Invocations and model time per variant, from CloudWatch (`GetMetricData`).

use super::error::{AccountError, from_sdk};
use super::pages::PageTokens;
use aws_sdk_cloudwatch::types::{Dimension, Metric, MetricDataQuery, MetricStat};
use std::collections::BTreeMap;
use std::time::SystemTime;

/// One variant whose metrics are asked for.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    pub endpoint: String,
    pub variant: String,
    /// An inference component: its metrics carry the `InferenceComponentName`
    /// dimension alone.
    pub component: Option<String>,
    /// Where its span begins: the window's start, or its creation when later (an
    /// endpoint re-created under the same name: the calls of the one deleted are
    /// CloudWatch's under the same dimensions, and not this one's).
    pub start: SystemTime,
}

/// What CloudWatch says a variant did over the window.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct VariantUsage {
    /// `Invocations`, summed (0 when CloudWatch has no datapoint: SageMaker
    /// publishes it only for minutes with calls, and never for asynchronous
    /// endpoints, which are not asked).
    pub invocations: u64,
    /// `ModelLatency` summed, in microseconds: the model's time on the calls;
    /// `None` when CloudWatch has no datapoint.
    pub model_latency_us: Option<f64>,
}

/// Queries per request: two per variant, well under the API's 500.
const QUERIES_PER_REQUEST: usize = 100;
/// Hourly datapoints: 24 for a day, 720 for 30 days (under the 100,800 a request may return).
const PERIOD_SECONDS: i32 = 3600;

/// `Invocations` and `ModelLatency` (statistic `Sum`, hourly) of each target from
/// its `start` to `end`, in the targets' order: one set of requests per distinct
/// start, each of up to [`QUERIES_PER_REQUEST`] queries, a target's ids carrying
/// its index (unique across every request). A target one of whose queries
/// CloudWatch did not answer whole (status `InternalError`, `Forbidden`, or one
/// this SDK does not know) is `Err` with what CloudWatch said: its missing values
/// are not zero calls. `PartialData` is whole once its pages are read. A target
/// whose start is not before `end` (created after the view's time: another
/// clock's, or a garbled answer) has no span to count calls over: `Err`, not 0.
pub(crate) async fn fetch(
    client: &aws_sdk_cloudwatch::Client,
    targets: &[Target],
    end: SystemTime,
) -> Result<Vec<Result<VariantUsage, String>>, AccountError> {
    let mut usage = vec![Ok(VariantUsage::default()); targets.len()];
    let mut by_start: BTreeMap<SystemTime, Vec<usize>> = BTreeMap::new();
    for (i, target) in targets.iter().enumerate() {
        if target.start < end {
            by_start.entry(target.start).or_default().push(i);
        } else {
            usage[i] = Err(
                "created at or after the view's time: no span to count its calls over".to_owned(),
            );
        }
    }
    let per_request = QUERIES_PER_REQUEST / 2;
    for (start, indices) in &by_start {
        for chunk in indices.chunks(per_request) {
            let mut queries = Vec::with_capacity(chunk.len() * 2);
            for &i in chunk {
                queries.push(query(&format!("i{i}"), "Invocations", &targets[i]));
                queries.push(query(&format!("l{i}"), "ModelLatency", &targets[i]));
            }
            read_pages(client, queries, chunk, *start, end, &mut usage).await?;
        }
    }
    Ok(usage)
}

/// Every page of one `GetMetricData` request of `queries` (those of the targets
/// `asked`), from `start` to `end`, added to `usage` by the ids' indices.
async fn read_pages(
    client: &aws_sdk_cloudwatch::Client,
    queries: Vec<MetricDataQuery>,
    asked: &[usize],
    start: SystemTime,
    end: SystemTime,
    usage: &mut [Result<VariantUsage, String>],
) -> Result<(), AccountError> {
    let mut pages = PageTokens::default();
    loop {
        let answer = client
            .get_metric_data()
            .set_metric_data_queries(Some(queries.clone()))
            .start_time(start.into())
            .end_time(end.into())
            .set_next_token(pages.send_next())
            .send()
            .await
            .map_err(|e| from_sdk("GetMetricData", "cloudwatch:GetMetricData", e))?;
        for result in answer.metric_data_results() {
            // Ids are ours ("i3", "l3"), of the targets asked; anything else is
            // skipped, never split mid-character.
            let Some((kind, index)) = result.id().and_then(|id| id.split_at_checked(1)) else {
                continue;
            };
            let Some(entry) = index
                .parse::<usize>()
                .ok()
                .filter(|i| asked.contains(i))
                .and_then(|i| usage.get_mut(i))
            else {
                continue;
            };
            if let Some(reason) = unanswered(result) {
                *entry = Err(reason);
            }
            let Ok(slot) = entry else {
                continue;
            };
            let values = result.values();
            match kind {
                "i" => {
                    let sum: f64 = values.iter().sum();
                    // Counts are whole numbers; a negative or NaN sum is not one.
                    // Pages of one query add up, saturating (never wrapping).
                    slot.invocations =
                        slot.invocations
                            .saturating_add(if sum.is_finite() && sum > 0.0 {
                                sum.round() as u64
                            } else {
                                0
                            });
                }
                _ if !values.is_empty() => {
                    let sum: f64 = values.iter().sum();
                    *slot.model_latency_us.get_or_insert(0.0) += sum;
                }
                _ => {}
            }
        }
        if !pages.read_on(answer.next_token(), "GetMetricData")? {
            break;
        }
    }
    Ok(())
}

/// Why CloudWatch did not answer a query whole, from its status and messages;
/// `None` when it did (`Complete`, `PartialData` whose next pages follow, or no
/// status at all).
fn unanswered(result: &aws_sdk_cloudwatch::types::MetricDataResult) -> Option<String> {
    use aws_sdk_cloudwatch::types::StatusCode;
    let status = result.status_code()?;
    if matches!(status, StatusCode::Complete | StatusCode::PartialData) {
        return None;
    }
    let said: Vec<&str> = result
        .messages()
        .iter()
        .filter_map(|m| m.value().or(m.code()))
        .collect();
    Some(match said.is_empty() {
        true => format!("CloudWatch answered {}", status.as_str()),
        false => format!(
            "CloudWatch answered {}: {}",
            status.as_str(),
            said.join("; ")
        ),
    })
}

fn query(id: &str, metric: &str, target: &Target) -> MetricDataQuery {
    let dimension = |name: &str, value: &str| Dimension::builder().name(name).value(value).build();
    let mut of = Metric::builder()
        .namespace("AWS/SageMaker")
        .metric_name(metric);
    of = match &target.component {
        Some(component) => of.dimensions(dimension("InferenceComponentName", component)),
        None => of
            .dimensions(dimension("EndpointName", &target.endpoint))
            .dimensions(dimension("VariantName", &target.variant)),
    };
    MetricDataQuery::builder()
        .id(id)
        .metric_stat(
            MetricStat::builder()
                .metric(of.build())
                .period(PERIOD_SECONDS)
                .stat("Sum")
                .build(),
        )
        .return_data(true)
        .build()
}
