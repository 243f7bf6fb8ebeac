//! [`EmfSink`]: one CloudWatch Embedded Metric Format line per call.

use super::{CostSink, NamesComponents};
use crate::billing::Cost;
use crate::ledger::{
    BackgroundWriter, DEFAULT_CAPACITY, Encode, LedgerError, Options, Refused, SinkStats,
    StreamTarget,
};
use crate::usage::Outcome;
use crate::util::BoxFuture;
use rust_decimal::prelude::ToPrimitive;
use serde::Serialize;
use std::collections::HashSet;
use std::io;
use std::sync::{Arc, Mutex};

/// The namespace used unless [`EmfSinkBuilder::namespace`] sets another.
pub const DEFAULT_NAMESPACE: &str = "SageMeter";

/// Writes one [CloudWatch Embedded Metric Format][emf] JSON line per call, to
/// stdout by default: on Lambda, ECS or with the CloudWatch agent, CloudWatch
/// Logs turns each line into metrics with no API call from the application.
///
/// ```no_run
/// # async fn run(sdk_config: aws_types::SdkConfig) -> Result<(), Box<dyn std::error::Error>> {
/// use sagemeter::sink::EmfSink;
/// let emf = EmfSink::builder().namespace("MyService/Inference").build()?;
/// let client = sagemeter::Client::builder(&sdk_config).sink(emf.clone()).build()?;
/// // ... calls ...
/// emf.shutdown().await?;
/// # Ok(()) }
/// ```
///
/// Each line (shown wrapped):
/// ```json
/// {"_aws":{"Timestamp":1793613600000,"CloudWatchMetrics":[{"Namespace":"SageMeter",
///   "Dimensions":[["Region","Endpoint","Variant"]],"Metrics":[{"Name":"CostUSD","Unit":"None"},
///   {"Name":"LatencyMs","Unit":"Milliseconds"},{"Name":"Invocations","Unit":"Count"},
///   {"Name":"Errors","Unit":"Count"},{"Name":"Unpriced","Unit":"Count"}]}]},
///  "Region":"us-east-1","Endpoint":"rt","Variant":"AllTraffic","CostUSD":0.000015972222,"LatencyMs":250.0,
///  "Invocations":1,"Errors":0,"Unpriced":0,"CallId":"…","Operation":"InvokeEndpoint","Outcome":"ok",
///  "PriceSource":"live","FullyPriced":true,"CostUSDExact":"0.000015972222"}
/// ```
/// **Dimensions.** The metrics have one dimension set, `[Region, Endpoint,
/// Variant]`, and a call that named an inference component also has
/// `"InferenceComponent"` and a second set, `[Region, Endpoint,
/// InferenceComponent]`. `Region` is in every set: it is the client's region, as
/// two clients of one process, one per region, write to one log group and an
/// endpoint name can be in both regions (two deployments). CloudWatch keeps a
/// metric per dimension set, and there is no set without `Region`: an alarm,
/// dashboard or `GetMetricData` query names `Region` along with `Endpoint` and
/// `Variant` (or `InferenceComponent`), or it finds no data.
/// `InferenceComponent` is what the request named, and every value is 5 more
/// custom metrics, billed monthly: as the metrics' `inference_component` label,
/// it is the component's name when the endpoint's profile lists it and `_other`
/// when it does not, so that names a request makes up cannot make metrics; when
/// that is not known (the endpoint could not be described, or the sink was given
/// the receipt by another way than [`ClientBuilder::sink`](crate::ClientBuilder::sink),
/// e.g. by hand or through a [`Queued`](super::Queued)), each endpoint of each
/// region keeps the first [`MAX_TAG_LABEL_VALUES`](super::MAX_TAG_LABEL_VALUES)
/// names and the rest are `_other`. Receipts and ledgers keep the name.
/// `Timestamp` is the call's start (ms since the epoch); for the settlement of an
/// asynchronous invocation, when the sink writes its line, on the system clock
/// (its cost is known only then, up to hours after the submission). `Variant` is
/// `unknown` when the variant could not be told, `Region` when the receipt names
/// none, and so is any dimension value CloudWatch
/// would refuse (empty, blank, not ASCII, over 1,024 characters). `CostUSD` is a double, as every CloudWatch metric value; the exact
/// decimal is kept as the `CostUSDExact` property. `Invocations` is 1, except on
/// the settlement of an asynchronous invocation ([`Cost::is_async_settlement`]):
/// one `InvokeEndpointAsync` call has two receipts, and its settlement's document
/// carries its cost and latency with `Invocations` 0, so that `Sum(Invocations)`
/// counts the call once (as `sagemeter_invocations_total` does). `Errors` is 1 for
/// a failed or cancelled call. `Unpriced` is 1 for a receipt with a line that could
/// not be priced (as `sagemeter_unpriced_total` counts it): its `CostUSD` is a
/// lower bound, and `Sum(Unpriced)` is what an alarm watches so that it is never a
/// silent $0. It counts receipts, not calls: an asynchronous invocation whose
/// submission and settlement both have an unpriced line counts 2 (100 such
/// invocations: `Sum(Invocations)` 100, `Sum(Unpriced)` 200). The other members
/// are properties, searchable in Logs Insights but not metrics. No payload, no tags (tags are unbounded; see
/// [`CostMetrics::with_tag_labels`](super::CostMetrics::with_tag_labels) for
/// bounded tag dimensions in Prometheus).
///
/// Like [`JsonlLedger`](crate::ledger::JsonlLedger), `record` never blocks: lines are
/// written by a background thread, with the same queue, drop and flush rules.
/// A write cut short (a full disk) keeps the lines written whole, counted written;
/// a fragment of the next is ended by a newline before anything else is written, so
/// no later line is glued to it (`docs/ledger.md`, on failed writes).
///
/// [emf]: https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html
#[derive(Clone, Debug)]
pub struct EmfSink {
    writer: Arc<BackgroundWriter>,
    lines: Arc<Lines>,
}

/// Options of an [`EmfSink`].
pub struct EmfSinkBuilder {
    namespace: String,
    out: Option<(String, Box<dyn io::Write + Send>)>,
    capacity: usize,
}

impl std::fmt::Debug for EmfSinkBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmfSinkBuilder")
            .field("namespace", &self.namespace)
            .field("out", &self.out.as_ref().map(|(name, _)| name))
            .field("capacity", &self.capacity)
            .finish()
    }
}

impl EmfSinkBuilder {
    /// The CloudWatch namespace (default [`DEFAULT_NAMESPACE`]). 1–255 characters
    /// of letters, digits and `. - _ / # : space`, not starting with `AWS/`.
    pub fn namespace(mut self, namespace: impl Into<String>) -> Self {
        self.namespace = namespace.into();
        self
    }

    /// Where the lines go (default: stdout). `name` is used in messages. A
    /// writer that panics loses the lines it was given, counted as a failed
    /// write's (`lost_on_error`, reason `panicked`), and is not used again: every
    /// later write fails the same way.
    pub fn writer(mut self, name: impl Into<String>, out: impl io::Write + Send + 'static) -> Self {
        self.out = Some((name.into(), Box::new(out)));
        self
    }

    /// How many receipts may wait for the writer (default 8192; 1 to
    /// [`MAX_CAPACITY`](crate::ledger::MAX_CAPACITY)).
    pub fn capacity(mut self, receipts: usize) -> Self {
        self.capacity = receipts;
        self
    }

    /// Checks the options and starts the writer.
    pub fn build(self) -> Result<EmfSink, LedgerError> {
        validate_namespace(&self.namespace)?;
        crate::ledger::check_options(
            None,
            crate::ledger::capacity_checks(self.capacity, "EmfSinkBuilder::capacity"),
        )?;
        let (name, out) = self
            .out
            .unwrap_or_else(|| ("stdout".to_owned(), Box::new(io::stdout())));
        let lines = Arc::new(Lines {
            namespace: self.namespace,
            components: Mutex::default(),
        });
        // A receipt not from the client (`record`, `try_record`): whether its
        // endpoint lists its component is not known.
        let encode: Encode = {
            let lines = lines.clone();
            Box::new(
                move |cost: &Cost, out: &mut Vec<u8>, _: &mut crate::ledger::Refs| {
                    lines.encode(cost, None, out)
                },
            )
        };
        let writer = BackgroundWriter::start(
            Options {
                kind: "emf",
                name: name.into(),
                capacity: self.capacity,
                sync_every: None,
            },
            encode,
            StreamTarget::new(out),
        )?;
        Ok(EmfSink {
            writer: Arc::new(writer),
            lines,
        })
    }
}

impl EmfSink {
    /// Lines to stdout, namespace [`DEFAULT_NAMESPACE`].
    pub fn stdout() -> EmfSink {
        Self::builder()
            .build()
            .expect("the default EMF options are valid")
    }

    /// Options: namespace, writer, queue capacity.
    pub fn builder() -> EmfSinkBuilder {
        EmfSinkBuilder {
            namespace: DEFAULT_NAMESPACE.to_owned(),
            out: None,
            capacity: DEFAULT_CAPACITY,
        }
    }

    /// Queues one receipt without blocking; `Ok` means acknowledged. A refusal is
    /// yours to handle: unlike [`CostSink::record`], which drops a refused receipt
    /// and counts it, this counts and logs nothing.
    pub fn try_record(&self, cost: &Cost) -> Result<(), Refused> {
        self.writer.try_record(cost)
    }

    /// Waits until every receipt acknowledged before this call is written and the
    /// writer flushed.
    pub async fn flush(&self) -> Result<(), LedgerError> {
        self.writer.flush(false).await
    }

    /// Writes everything acknowledged, then stops the writer; later records are refused.
    pub async fn shutdown(&self) -> Result<(), LedgerError> {
        self.writer.shutdown().await
    }

    /// Counters since the sink was built.
    pub fn stats(&self) -> SinkStats {
        self.writer.stats()
    }
}

impl CostSink for EmfSink {
    /// A receipt given by another way than the client's own: whether its endpoint
    /// lists its inference component is not known, so each endpoint (of each
    /// region) names at most [`MAX_TAG_LABEL_VALUES`](super::MAX_TAG_LABEL_VALUES)
    /// components, the rest [`OTHER_TAG_VALUE`](super::OTHER_TAG_VALUE).
    fn record(&self, cost: &Cost) {
        self.writer.record(cost);
    }

    fn flush(&self) -> BoxFuture<'_, io::Result<()>> {
        Box::pin(async move { Ok(EmfSink::flush(self).await?) })
    }

    fn shutdown(&self) -> BoxFuture<'_, io::Result<()>> {
        Box::pin(async move { Ok(EmfSink::shutdown(self).await?) })
    }
}

impl NamesComponents for EmfSink {
    fn record_call(&self, cost: &Cost, component_listed: Option<bool>) {
        self.writer.record_with(cost, &|cost, out, _| {
            self.lines.encode(cost, component_listed, out)
        });
    }
}

fn validate_namespace(namespace: &str) -> Result<(), LedgerError> {
    let ok_chars = namespace
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || ".-_/#: ".contains(c));
    let invalid = |problem: String| {
        LedgerError::InvalidOption(crate::ConfigError::new(
            "EmfSinkBuilder::namespace",
            problem,
        ))
    };
    if namespace.is_empty() || namespace.len() > 255 || !ok_chars {
        return Err(invalid(format!(
            "EMF namespace `{namespace}` is not valid: use 1 to 255 letters, digits or \
             `. - _ / # : ` and spaces"
        )));
    }
    if namespace.starts_with(':') {
        return Err(invalid(format!(
            "EMF namespace `{namespace}` starts with `:`, which CloudWatch does not accept"
        )));
    }
    if namespace.starts_with("AWS/") {
        return Err(invalid(format!(
            "EMF namespace `{namespace}` starts with `AWS/`, which is reserved for AWS services"
        )));
    }
    Ok(())
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct MetricDefinition {
    name: &'static str,
    unit: &'static str,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct MetricDirective<'a> {
    namespace: &'a str,
    dimensions: &'static [[&'static str; 3]],
    metrics: [MetricDefinition; 5],
}

/// The metrics by region, endpoint and variant (an endpoint is one region's: two
/// clients of a process, one per region, can call endpoints of the same name).
const BY_VARIANT: &[[&str; 3]] = &[["Region", "Endpoint", "Variant"]];
/// And, for a call that named an inference component, by region, endpoint and
/// component too (a bounded set: see [`Lines::encode`]).
const BY_VARIANT_AND_COMPONENT: &[[&str; 3]] = &[
    ["Region", "Endpoint", "Variant"],
    ["Region", "Endpoint", "InferenceComponent"],
];

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Metadata<'a> {
    timestamp: i64,
    cloud_watch_metrics: [MetricDirective<'a>; 1],
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct EmfLine<'a> {
    #[serde(rename = "_aws")]
    aws: Metadata<'a>,
    region: &'a str,
    endpoint: &'a str,
    variant: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    inference_component: Option<&'a str>,
    #[serde(rename = "CostUSD")]
    cost_usd: f64,
    latency_ms: f64,
    invocations: u8,
    errors: u8,
    unpriced: u8,
    call_id: &'a str,
    operation: &'static str,
    outcome: &'static str,
    price_source: &'static str,
    fully_priced: bool,
    #[serde(rename = "CostUSDExact")]
    cost_usd_exact: String,
}

/// A dimension value CloudWatch takes: 1 to 1,024 ASCII characters, not all
/// whitespace, no control characters. Anything else (an empty endpoint name from
/// a request that never named one, a variant of spaces) would make CloudWatch
/// drop the dimensions and file the figures under no endpoint at all; it is
/// `unknown` instead, as a missing variant is. SageMaker's own names always pass.
fn dimension_value(value: &str) -> &str {
    let valid = !value.is_empty()
        && value.len() <= 1024
        && value.bytes().all(|b| b.is_ascii() && !b.is_ascii_control())
        && value.bytes().any(|b| !b.is_ascii_whitespace());
    if valid { value } else { "unknown" }
}

/// What makes a receipt's line.
struct Lines {
    namespace: String,
    /// The inference components named by their own names when whether the
    /// endpoint lists them was not known, by region, then endpoint (at most
    /// [`MAX_TAG_LABEL_VALUES`](super::MAX_TAG_LABEL_VALUES) each).
    components: Mutex<crate::FastMap<String, crate::FastMap<String, HashSet<String>>>>,
}

impl std::fmt::Debug for Lines {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lines")
            .field("namespace", &self.namespace)
            .finish_non_exhaustive()
    }
}

impl Lines {
    /// Appends `cost`'s line to `out`. Its `InferenceComponent` dimension is named
    /// as the metrics' label is ([`component_value`](super::component_value)):
    /// every value is 5 CloudWatch metrics, billed each month, and the request
    /// names the component, so a name the endpoint does not list
    /// (`component_listed` `Some(false)`) is `_other`, and when that is not known
    /// (`None`) each region's endpoint keeps the first 100 names.
    fn encode(
        &self,
        cost: &Cost,
        component_listed: Option<bool>,
        out: &mut Vec<u8>,
    ) -> serde_json::Result<()> {
        let namespace = &self.namespace;
        let region = cost.region.as_deref().unwrap_or_default();
        let inference_component = cost
            .inference_component
            .as_deref()
            .filter(|c| !c.is_empty())
            .map(|component| {
                // The names seen are locked only when they are needed (the
                // listing not known), not on every call naming a component.
                let mut locked = None;
                let locked = &mut locked;
                super::component_value(component, component_listed, &cost.endpoint, move || {
                    let components =
                        locked.insert(self.components.lock().unwrap_or_else(|e| e.into_inner()));
                    let endpoints = crate::util::entry_by_str(components, region);
                    crate::util::entry_by_str(endpoints, &cost.endpoint)
                })
            })
            .map(dimension_value);
        let line = EmfLine {
            aws: Metadata {
                // A settlement's cost becomes known now, up to hours after
                // the submission its receipt is dated by: stamped at the
                // submission, it would land in periods an alarm has already
                // evaluated (as the metrics counter counts it now).
                timestamp: if cost.is_async_settlement() {
                    chrono::Utc::now().timestamp_millis()
                } else {
                    cost.at.timestamp_millis()
                },
                cloud_watch_metrics: [MetricDirective {
                    namespace,
                    // The dimensions named are exactly the members written.
                    dimensions: match inference_component {
                        Some(_) => BY_VARIANT_AND_COMPONENT,
                        None => BY_VARIANT,
                    },
                    metrics: [
                        MetricDefinition {
                            name: "CostUSD",
                            unit: "None",
                        },
                        MetricDefinition {
                            name: "LatencyMs",
                            unit: "Milliseconds",
                        },
                        MetricDefinition {
                            name: "Invocations",
                            unit: "Count",
                        },
                        MetricDefinition {
                            name: "Errors",
                            unit: "Count",
                        },
                        MetricDefinition {
                            name: "Unpriced",
                            unit: "Count",
                        },
                    ],
                }],
            },
            region: dimension_value(region),
            endpoint: dimension_value(&cost.endpoint),
            variant: dimension_value(cost.variant.as_deref().unwrap_or_default()),
            inference_component,
            cost_usd: cost.cost_usd.to_f64().unwrap_or(0.0),
            latency_ms: super::log::millis(cost.usage.latency),
            // An async invocation is one invocation with two receipts: its
            // settlement carries its cost and latency, not a second invocation.
            invocations: u8::from(!cost.is_async_settlement()),
            errors: u8::from(cost.usage.outcome != Outcome::Ok),
            unpriced: u8::from(!cost.is_fully_priced()),
            call_id: &cost.call_id,
            operation: cost.usage.operation.as_str(),
            outcome: cost.usage.outcome.as_str(),
            price_source: cost.price_source().map_or("unpriced", |s| s.as_str()),
            fully_priced: cost.is_fully_priced(),
            cost_usd_exact: cost.cost_usd.to_string(),
        };
        serde_json::to_writer(&mut *out, &line)?;
        out.push(b'\n');
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sink::test_support::{Buffer, async_submission, cost, settlement_of};
    use serde_json::json;

    #[tokio::test]
    async fn each_call_is_one_emf_document_in_the_spec_shape() {
        let buffer = Buffer::default();
        let sink = EmfSink::builder()
            .namespace("Team/Inference")
            .writer("buffer", buffer.clone())
            .build()
            .unwrap();
        sink.record(&cost(Some("AllTraffic"), "ok"));
        sink.record(&cost(None, "error"));
        sink.flush().await.unwrap();
        let lines = buffer.json_lines();
        assert_eq!(lines.len(), 2);
        assert_eq!(
            lines[0],
            json!({
                "_aws": {
                    // 2026-11-02T10:00:00.250Z
                    "Timestamp": 1_793_613_600_250i64,
                    "CloudWatchMetrics": [{
                        "Namespace": "Team/Inference",
                        "Dimensions": [["Region", "Endpoint", "Variant"]],
                        "Metrics": [
                            {"Name": "CostUSD", "Unit": "None"},
                            {"Name": "LatencyMs", "Unit": "Milliseconds"},
                            {"Name": "Invocations", "Unit": "Count"},
                            {"Name": "Errors", "Unit": "Count"},
                            {"Name": "Unpriced", "Unit": "Count"}
                        ]
                    }]
                },
                "Region": "us-east-1", "Endpoint": "rt", "Variant": "AllTraffic",
                "CostUSD": 0.000015972222, "LatencyMs": 250.5,
                "Invocations": 1, "Errors": 0, "Unpriced": 0,
                "CallId": "req-1", "Operation": "InvokeEndpoint", "Outcome": "ok",
                "PriceSource": "unpriced", "FullyPriced": true,
                "CostUSDExact": "0.000015972222"
            })
        );
        assert_eq!(lines[1]["Variant"], "unknown");
        assert_eq!(lines[1]["Errors"], 1);
    }

    #[tokio::test]
    async fn same_named_endpoints_of_two_regions_are_two_metrics() {
        // Two clients of one process, one per region, log to one log group:
        // `rt` of each region is a deployment of its own.
        let buffer = Buffer::default();
        let sink = EmfSink::builder()
            .writer("buffer", buffer.clone())
            .build()
            .unwrap();
        let us = cost(Some("AllTraffic"), "ok");
        let mut eu = us.clone();
        eu.region = Some("eu-west-1".into());
        let mut unknown = us.clone();
        unknown.region = None;
        for call in [&us, &eu, &unknown] {
            sink.record(call);
        }
        sink.flush().await.unwrap();
        let lines = buffer.json_lines();
        let regions: Vec<&str> = lines
            .iter()
            .map(|l| l["Region"].as_str().unwrap())
            .collect();
        assert_eq!(regions, ["us-east-1", "eu-west-1", "unknown"]);
        for line in &lines {
            assert_eq!(
                line["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
                json!([["Region", "Endpoint", "Variant"]])
            );
        }
    }

    #[tokio::test]
    async fn a_call_to_an_inference_component_is_also_a_metric_by_component() {
        let buffer = Buffer::default();
        let sink = EmfSink::builder()
            .writer("buffer", buffer.clone())
            .build()
            .unwrap();
        // An empty component name (the client accepts it) is no component.
        for component in ["llama-8b", ""] {
            let mut call = cost(Some("AllTraffic"), "ok");
            call.inference_component = Some(component.into());
            sink.record(&call);
        }
        sink.flush().await.unwrap();
        let lines = buffer.json_lines();
        assert_eq!(lines.len(), 2);
        assert_eq!(
            lines[0]["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            json!([
                ["Region", "Endpoint", "Variant"],
                ["Region", "Endpoint", "InferenceComponent"]
            ])
        );
        assert_eq!(lines[0]["InferenceComponent"], "llama-8b");
        assert_eq!(
            lines[1]["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            json!([["Region", "Endpoint", "Variant"]])
        );
        // The spec: every dimension named is a member of the document, or
        // CloudWatch extracts none of its metrics.
        for line in &lines {
            let dimensions = &line["_aws"]["CloudWatchMetrics"][0]["Dimensions"];
            for name in dimensions
                .as_array()
                .unwrap()
                .iter()
                .flat_map(|set| set.as_array().unwrap())
            {
                assert!(
                    line.get(name.as_str().unwrap()).is_some(),
                    "{name} in {line}"
                );
            }
        }
    }

    /// A receipt given to the sink by hand: whether its endpoint lists its
    /// component is not known, and a request can name any. Each distinct
    /// `InferenceComponent` value is 5 CloudWatch custom metrics (CostUSD,
    /// LatencyMs, Invocations, Errors, Unpriced) at $0.30 per metric-month
    /// (CloudWatch pricing, first 10,000 metrics): 150 names were 150 × 5 = 750
    /// metrics, $225.00 a month; capped at 100 names and `_other`, 101 × 5 = 505,
    /// $151.50, however many more names are made up.
    #[tokio::test]
    async fn an_endpoint_has_at_most_100_components_by_name_when_its_listing_is_not_known() {
        let buffer = Buffer::default();
        let sink = EmfSink::builder()
            .writer("buffer", buffer.clone())
            .build()
            .unwrap();
        let component_call = |region: &str, name: &str| {
            let mut call = cost(Some("AllTraffic"), "ok");
            call.region = Some(region.into());
            call.inference_component = Some(name.into());
            call
        };
        for i in 0..150 {
            sink.record(&component_call("us-east-1", &format!("c-{i}")));
        }
        // The same endpoint name in another region is another deployment: its
        // own 100.
        sink.record(&component_call("eu-west-1", "c-149"));
        sink.flush().await.unwrap();
        let lines = buffer.json_lines();
        assert_eq!(lines.len(), 151);
        let components: Vec<&str> = lines[..150]
            .iter()
            .map(|l| l["InferenceComponent"].as_str().unwrap())
            .collect();
        let distinct: std::collections::HashSet<&str> = components.iter().copied().collect();
        assert!(distinct.len() <= 101, "{} values", distinct.len());
        // The first 100 keep their names, the other 50 are `_other`.
        assert_eq!(distinct.len(), 101);
        assert_eq!(components[99], "c-99");
        assert!(components[100..].iter().all(|&c| c == "_other"));
        assert_eq!(lines[150]["InferenceComponent"], "c-149");
        // Every document still names its dimensions as members.
        for line in &lines {
            assert_eq!(
                line["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
                json!([
                    ["Region", "Endpoint", "Variant"],
                    ["Region", "Endpoint", "InferenceComponent"]
                ])
            );
        }
    }

    #[tokio::test]
    async fn an_async_invocation_is_one_invocation_though_it_has_two_documents() {
        let buffer = Buffer::default();
        let sink = EmfSink::builder()
            .writer("buffer", buffer.clone())
            .build()
            .unwrap();
        // The submission (data in), then the settlement (processing time, data
        // out, the client's note) of the same InvokeEndpointAsync call.
        let submission = async_submission();
        let settlement = settlement_of(&submission);
        assert!(!submission.is_async_settlement());
        assert!(settlement.is_async_settlement());
        let before = chrono::Utc::now().timestamp_millis();
        sink.record(&submission);
        sink.record(&settlement);
        sink.flush().await.unwrap();
        let after = chrono::Utc::now().timestamp_millis();
        let lines = buffer.json_lines();
        assert_eq!(lines.len(), 2);
        // The submission is dated by its start (2026-11-02T10:00:00.250Z); the
        // settlement by when its cost became known, so that an alarm's period
        // sees it.
        assert_eq!(lines[0]["_aws"]["Timestamp"], 1_793_613_600_250i64);
        let settled_at = lines[1]["_aws"]["Timestamp"].as_i64().unwrap();
        assert!((before..=after).contains(&settled_at), "{settled_at}");
        let invocations: u64 = lines
            .iter()
            .map(|l| l["Invocations"].as_u64().unwrap())
            .sum();
        assert_eq!(invocations, 1, "Sum(Invocations) counts the call once");
        assert_eq!(lines[0]["Invocations"], 1);
        // The settlement still carries its cost and latency.
        assert_eq!(lines[1]["Invocations"], 0);
        assert_eq!(lines[1]["CostUSDExact"], "0.000042");
        assert_eq!(lines[1]["LatencyMs"], 250.5);
        assert_eq!(lines[1]["Operation"], "InvokeEndpointAsync");
    }

    #[tokio::test]
    async fn an_unpriced_call_is_counted_as_a_metric_not_left_at_a_silent_zero() {
        let buffer = Buffer::default();
        let sink = EmfSink::builder()
            .writer("buffer", buffer.clone())
            .build()
            .unwrap();
        // Compute unpriced (no rate for the instance type): the receipt's cost is
        // $0, a lower bound, not what AWS bills.
        let mut unpriced = cost(Some("AllTraffic"), "ok");
        unpriced.cost_usd = rust_decimal::Decimal::ZERO;
        unpriced.lines = serde_json::from_value(json!([{
            "item": "compute", "quantity": "0.000069444444", "unit": "instance_hours",
            "price": {"status": "unpriced", "reason": "no price for ml.x9.huge in us-east-1"}
        }]))
        .unwrap();
        assert!(!unpriced.is_fully_priced());
        sink.record(&unpriced);
        sink.record(&cost(Some("AllTraffic"), "ok"));
        sink.flush().await.unwrap();
        let lines = buffer.json_lines();
        assert_eq!(lines.len(), 2);
        // A metric CloudWatch extracts, declared as such: Sum(Unpriced) counts
        // the receipts whose CostUSD is not the whole cost.
        let declared: Vec<&str> = lines[0]["_aws"]["CloudWatchMetrics"][0]["Metrics"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["Name"].as_str().unwrap())
            .collect();
        assert!(declared.contains(&"Unpriced"), "{declared:?}");
        assert_eq!(lines[0]["Unpriced"], 1);
        assert_eq!(lines[0]["CostUSD"], 0.0);
        assert_eq!(lines[1]["Unpriced"], 0);
    }

    #[tokio::test]
    async fn dimension_values_cloudwatch_would_refuse_are_unknown() {
        // CloudWatch's dimension values are 1 to 1,024 ASCII characters with one
        // that is not whitespace; an empty or blank value makes it file the
        // metrics under no dimensions at all.
        let buffer = Buffer::default();
        let sink = EmfSink::builder()
            .writer("buffer", buffer.clone())
            .build()
            .unwrap();
        let mut blank = cost(Some(" "), "error");
        blank.endpoint = String::new(); // a request that never named its endpoint
        blank.inference_component = Some("llama\u{e9}\n".into());
        sink.record(&blank);
        sink.flush().await.unwrap();
        let line = &buffer.json_lines()[0];
        assert_eq!(line["Endpoint"], "unknown");
        assert_eq!(line["Variant"], "unknown");
        assert_eq!(line["InferenceComponent"], "unknown");
        for value in ["Endpoint", "Variant", "InferenceComponent"].map(|d| &line[d]) {
            let value = value.as_str().unwrap();
            assert!(value.is_ascii() && !value.trim().is_empty(), "{value:?}");
        }
    }

    /// A stream to a disk about to fill up: its first write waits for the test
    /// (so that the receipts recorded meanwhile go out together in the next),
    /// the disk fills 3½ of that first write's lengths in, one write is refused
    /// with ENOSPC (as write(2) refuses once it has taken what fitted), and
    /// then space is freed and everything is taken.
    struct NearlyFull {
        out: Arc<std::sync::Mutex<Vec<u8>>>,
        gate: Option<(std::sync::mpsc::Sender<()>, std::sync::mpsc::Receiver<()>)>,
        full_at: usize,
        refused: bool,
    }

    impl io::Write for NearlyFull {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if let Some((entered, open)) = self.gate.take() {
                let _ = entered.send(());
                let _ = open.recv();
                self.full_at = buf.len() * 7 / 2;
            }
            let mut out = self.out.lock().unwrap();
            if self.refused {
                out.extend_from_slice(buf);
                return Ok(buf.len());
            }
            let room = self.full_at.saturating_sub(out.len());
            if room == 0 {
                self.refused = true;
                return Err(io::Error::new(
                    io::ErrorKind::StorageFull,
                    "no space left on device",
                ));
            }
            let n = buf.len().min(room);
            out.extend_from_slice(&buf[..n]);
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[tokio::test]
    async fn a_write_cut_short_by_a_full_disk_glues_no_later_line_to_its_fragment() {
        // Same-length call ids: every line is as long as the first.
        let receipt = |id: &str| {
            let mut call = cost(Some("AllTraffic"), "ok");
            call.call_id = id.into();
            call
        };
        let out = Arc::new(std::sync::Mutex::new(Vec::new()));
        let (entered_tx, entered) = std::sync::mpsc::channel();
        let (open, gate) = std::sync::mpsc::sync_channel(0);
        let sink = EmfSink::builder()
            .writer(
                "nearly-full",
                NearlyFull {
                    out: out.clone(),
                    gate: Some((entered_tx, gate)),
                    full_at: usize::MAX,
                    refused: false,
                },
            )
            .build()
            .unwrap();
        sink.record(&receipt("call-0"));
        entered.recv().unwrap(); // the writer is writing call-0's line
        for id in ["call-1", "call-2", "call-3"] {
            sink.record(&receipt(id));
        }
        open.send(()).unwrap();
        // call-1 to call-3 go out in one batch: the disk takes call-1 and call-2
        // whole and half of call-3, then refuses the rest.
        let err = sink.flush().await.unwrap_err();
        assert!(matches!(err, LedgerError::Write { lost: 1, .. }), "{err:?}");
        // Space freed: the next receipt is written, and CloudWatch can read it.
        sink.record(&receipt("call-4"));
        sink.flush().await.unwrap();

        let text = String::from_utf8(out.lock().unwrap().clone()).unwrap();
        let mut ids = Vec::new();
        let mut fragments = 0;
        for line in text.lines() {
            match serde_json::from_str::<serde_json::Value>(line) {
                Ok(doc) => ids.push(doc["CallId"].as_str().unwrap().to_owned()),
                Err(_) => fragments += 1,
            }
        }
        assert_eq!(ids, ["call-0", "call-1", "call-2", "call-4"], "{text}");
        assert_eq!(
            fragments, 1,
            "call-3's first half, a line of its own: {text}"
        );
        assert!(text.ends_with('\n'));
        // Written: call-0, call-1, call-2 and call-4; lost: call-3 alone, whose
        // line was cut (was: 1 written, 3 lost, and call-4 glued to call-3's half).
        let stats = sink.stats();
        assert_eq!((stats.written, stats.lost_on_error), (4, 1));
    }

    /// A writer of the user's that panics on every write (a bug in it).
    struct Panics;

    impl io::Write for Panics {
        fn write(&mut self, _: &[u8]) -> io::Result<usize> {
            panic!("a writer with a bug");
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    /// A writer that panics loses what it was given as a failed write does,
    /// counted, and the sink goes on taking receipts, failing them the same way,
    /// rather than its thread dying with its queue uncounted.
    #[tokio::test]
    async fn a_writer_that_panics_loses_the_receipts_counted_and_the_sink_goes_on() {
        let sink = EmfSink::builder().writer("panics", Panics).build().unwrap();
        sink.record(&cost(Some("AllTraffic"), "ok"));
        sink.record(&cost(Some("AllTraffic"), "ok"));
        let err = sink.flush().await.unwrap_err();
        assert!(matches!(err, LedgerError::Write { lost: 2, .. }), "{err:?}");
        // 2 accepted = 0 written + 2 lost (was: 0 written, 0 lost, the thread gone).
        let stats = sink.stats();
        assert_eq!(
            (stats.accepted, stats.written, stats.lost_on_error),
            (2, 0, 2)
        );
        // The writer is not used again: the next receipt is lost the same way,
        // not refused as if the sink had been shut down.
        sink.record(&cost(Some("AllTraffic"), "ok"));
        let err = sink.flush().await.unwrap_err();
        assert!(matches!(err, LedgerError::Write { lost: 3, .. }), "{err:?}");
        let stats = sink.stats();
        assert_eq!(
            (
                stats.accepted,
                stats.written,
                stats.lost_on_error,
                stats.refused_closed
            ),
            (3, 0, 3, 0)
        );
        assert!(sink.shutdown().await.is_err());
    }

    #[test]
    fn namespaces_are_checked() {
        for bad in [
            "",
            "AWS/SageMaker",
            "bad*chars",
            ":leading-colon",
            &"x".repeat(256),
        ] {
            let err = EmfSink::builder().namespace(bad).build().unwrap_err();
            assert!(
                matches!(&err, LedgerError::InvalidOption(c) if c.option == "EmfSinkBuilder::namespace"),
                "{err:?}"
            );
        }
        // None, or more than Tokio's channel takes (it would panic).
        for capacity in [0, crate::ledger::MAX_CAPACITY + 1, usize::MAX] {
            let err = EmfSink::builder().capacity(capacity).build().unwrap_err();
            assert!(
                matches!(&err, LedgerError::InvalidOption(c) if c.option == "EmfSinkBuilder::capacity"),
                "{capacity}: {err:?}"
            );
        }
    }
}
