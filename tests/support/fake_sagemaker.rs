//! An in-process fake of the SageMaker control plane (awsJson1.1 `DescribeEndpoint`,
//! `DescribeEndpointConfig`, `ListInferenceComponents`, `DescribeInferenceComponent`)
//! and runtime (`POST /endpoints/{name}/invocations`) on one
//! loopback port, so that tests drive the real SDK stack with full control over
//! what the service says.
//!
//! In an integration test: `use crate::support::fake_sagemaker::{FakeSageMaker, FakeVariant};`.
//!
//! ```ignore
//! let fake = FakeSageMaker::start().await;
//! fake.add_endpoint("rt", vec![FakeVariant::instance("AllTraffic", "ml.m5.xlarge", 2)]);
//! let config = fake.sdk_config().await;      // endpoint_url = the fake, us-east-1, test creds
//!
//! // An endpoint for inference components: its variants carry no model.
//! fake.add_endpoint("shared", vec![FakeVariant::instance("AllTraffic", "ml.g5.12xlarge", 2).without_model()]);
//! fake.add_component("shared", FakeComponent::gpus("llama", "AllTraffic", 1, 1.0));
//! fake.set_copies("llama", 3);
//! ```

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::json;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One production variant of a fake endpoint.
#[derive(Debug, Clone)]
pub struct FakeVariant {
    pub name: String,
    pub instance_type: Option<String>,
    pub instance_count: u32,
    pub serverless_memory_mb: Option<u32>,
    pub provisioned_concurrency: Option<u32>,
    /// `false`: the variant hosts inference components (no `ModelName`).
    pub has_model: bool,
    /// The config's `VolumeSizeInGB`, when set.
    pub volume_gb: Option<u32>,
}

/// One inference component of a fake endpoint.
#[derive(Debug, Clone)]
pub struct FakeComponent {
    pub name: String,
    pub endpoint: String,
    pub variant: String,
    pub copies: u32,
    pub accelerators: Option<f32>,
    pub cpu_cores: Option<f32>,
    pub memory_mb: Option<u32>,
    /// An adapter's base component (`BaseInferenceComponentName`).
    pub base: Option<String>,
    /// `false`: no `CurrentCopyCount` yet, status `Creating` (copies asked for,
    /// none deployed).
    pub deployed: bool,
    /// Listed, but deleted before `DescribeInferenceComponent` sees it.
    pub vanishes: bool,
}

impl FakeComponent {
    /// A component whose copies each reserve `accelerators` GPUs (and 2 vCPUs, 8 GB).
    pub fn gpus(name: &str, variant: &str, copies: u32, accelerators: f32) -> Self {
        FakeComponent {
            name: name.into(),
            endpoint: String::new(),
            variant: variant.into(),
            copies,
            accelerators: Some(accelerators),
            cpu_cores: Some(2.0),
            memory_mb: Some(8192),
            base: None,
            deployed: true,
            vanishes: false,
        }
    }

    /// A LoRA adapter of `base`, described as AWS describes one: no variant, no
    /// compute requirements, no copies of its own.
    pub fn adapter(name: &str, base: &str) -> Self {
        FakeComponent {
            name: name.into(),
            endpoint: String::new(),
            variant: String::new(),
            copies: 0,
            accelerators: None,
            cpu_cores: None,
            memory_mb: None,
            base: Some(base.into()),
            deployed: true,
            vanishes: false,
        }
    }

    /// Still being created: its copies are asked for, none deployed.
    pub fn creating(mut self) -> Self {
        self.deployed = false;
        self
    }

    /// Deleted between the listing and its description.
    pub fn vanishing(mut self) -> Self {
        self.vanishes = true;
        self
    }

    /// A component whose copies each reserve CPU cores and memory only.
    pub fn cpus(name: &str, variant: &str, copies: u32, cpu_cores: f32, memory_mb: u32) -> Self {
        FakeComponent {
            name: name.into(),
            endpoint: String::new(),
            variant: variant.into(),
            copies,
            accelerators: None,
            cpu_cores: Some(cpu_cores),
            memory_mb: Some(memory_mb),
            base: None,
            deployed: true,
            vanishes: false,
        }
    }
}

impl FakeVariant {
    /// The config gives each instance an ML storage volume of `gb` GB.
    pub fn with_volume(mut self, gb: u32) -> Self {
        self.volume_gb = Some(gb);
        self
    }

    /// The variant hosts inference components: its config names no model.
    pub fn without_model(mut self) -> Self {
        self.has_model = false;
        self
    }

    pub fn instance(name: &str, instance_type: &str, count: u32) -> Self {
        FakeVariant {
            name: name.into(),
            instance_type: Some(instance_type.into()),
            instance_count: count,
            serverless_memory_mb: None,
            provisioned_concurrency: None,
            has_model: true,
            volume_gb: None,
        }
    }

    pub fn serverless(name: &str, memory_mb: u32) -> Self {
        FakeVariant {
            name: name.into(),
            instance_type: None,
            instance_count: 0,
            serverless_memory_mb: Some(memory_mb),
            provisioned_concurrency: None,
            has_model: true,
            volume_gb: None,
        }
    }
}

/// What the fake answers, changeable while it runs.
#[derive(Default)]
pub struct FakeState {
    pub endpoints: Mutex<HashMap<String, Vec<FakeVariant>>>,
    /// A blue/green deployment's new fleet, by endpoint: `DescribeEndpoint`
    /// gives it as `PendingDeploymentSummary` (config `<endpoint>-green-config`).
    pub deployments: Mutex<HashMap<String, Vec<FakeVariant>>>,
    /// Endpoints being created (status `Creating`), by name: the instances of
    /// each variant up so far (at most its count). `DescribeEndpoint` gives no
    /// `ProductionVariants` then, and the fleet being created as
    /// `PendingDeploymentSummary` of the endpoint's own config.
    pub creating: Mutex<HashMap<String, u32>>,
    /// `Some(code)`: `DescribeEndpointConfig` of a deployment's config fails so.
    pub deployment_config_error: Mutex<Option<String>>,
    /// Inference components, in the order added.
    pub components: Mutex<Vec<FakeComponent>>,
    /// Calls to `ListInferenceComponents` and `DescribeInferenceComponent`.
    pub component_calls: AtomicU64,
    /// `InferenceComponentName` and `TargetModel` of each invocation, in order.
    pub invoked: Mutex<Vec<(Option<String>, Option<String>)>>,
    /// Response body of every invocation.
    pub response_body: Mutex<Vec<u8>>,
    /// Response bodies of the next invocations, in order, before `response_body`.
    pub next_bodies: Mutex<std::collections::VecDeque<Vec<u8>>>,
    /// The invocations' `Content-Type` (`application/json` unless set).
    pub response_content_type: Mutex<Option<String>>,
    /// Added before every invocation answers.
    pub latency: Mutex<Duration>,
    /// Latencies of the next invocations to answer, in order, instead of `latency`.
    pub next_latencies: Mutex<std::collections::VecDeque<Duration>>,
    /// `Some((status, error type))`: invocations fail like this.
    pub invoke_error: Mutex<Option<(u16, String)>>,
    /// The failing invocations' `message` (default `<type> from the fake`); a
    /// `ModelError` then also carries it as `OriginalMessage`, as SageMaker does.
    pub invoke_error_message: Mutex<Option<String>>,
    /// `Credential=` of each request's `Authorization` header (access key id/scope).
    pub credentials: Mutex<Vec<String>>,
    /// `Some(code)`: DescribeEndpoint fails with this awsJson error code.
    pub describe_error: Mutex<Option<String>>,
    /// Added before every control-plane request answers.
    pub control_plane_delay: Mutex<Duration>,
    /// Control-plane requests being answered, and the most there were at once.
    pub control_plane_in_flight: AtomicU64,
    pub control_plane_most_at_once: AtomicU64,
    /// Bodies received, to check what was sent.
    pub received_bodies: Mutex<Vec<Vec<u8>>>,
    pub invocations: AtomicU64,
    /// Every request received, on any path (one the fake does not serve too).
    pub requests: AtomicU64,
    /// `InvokeEndpointAsync` requests received.
    pub async_submissions: AtomicU64,
    pub describe_calls: AtomicU64,
    /// While set, invocations wait (after being counted) until it is cleared.
    pub hold: std::sync::atomic::AtomicBool,
    pub released: tokio::sync::Notify,
    /// The next this-many invocations are throttled (`ThrottlingException`).
    pub throttle_next: AtomicU64,
    /// Added before a throttled invocation answers (SageMaker's front end, not
    /// the model, took that long).
    pub throttle_latency: Mutex<Duration>,
}

pub struct FakeSageMaker {
    pub url: String,
    pub state: Arc<FakeState>,
    _server: tokio::task::JoinHandle<()>,
}

impl FakeSageMaker {
    pub async fn start() -> FakeSageMaker {
        let state = Arc::new(FakeState::default());
        *state.response_body.lock().unwrap() = br#"{"choices":[{"message":{"content":"ok"}}],"usage":{"prompt_tokens":12,"completion_tokens":30,"total_tokens":42}}"#.to_vec();
        let app = Router::new()
            .route("/", post(control_plane))
            .route("/endpoints/{name}/invocations", post(invoke))
            .route("/endpoints/{name}/async-invocations", post(invoke_async))
            .layer(axum::middleware::from_fn_with_state(
                state.clone(),
                count_request,
            ))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let server = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        FakeSageMaker {
            url,
            state,
            _server: server,
        }
    }

    pub fn add_endpoint(&self, name: &str, variants: Vec<FakeVariant>) {
        self.state
            .endpoints
            .lock()
            .unwrap()
            .insert(name.into(), variants);
    }

    /// Starts a blue/green deployment of `endpoint` to `new_fleet` (instances
    /// up so far: each variant's count), baking until [`finish_deployment`](Self::finish_deployment).
    pub fn start_deployment(&self, endpoint: &str, new_fleet: Vec<FakeVariant>) {
        self.state
            .deployments
            .lock()
            .unwrap()
            .insert(endpoint.into(), new_fleet);
    }

    /// Ends `endpoint`'s deployment: its new fleet is the endpoint's, the old retired.
    pub fn finish_deployment(&self, endpoint: &str) {
        let new_fleet = self.state.deployments.lock().unwrap().remove(endpoint);
        if let Some(new_fleet) = new_fleet {
            self.add_endpoint(endpoint, new_fleet);
        }
    }

    /// Starts creating endpoint `name` on `variants`: `Creating` (its calls
    /// refused), none of its instances up, until [`finish_creating`](Self::finish_creating).
    pub fn start_creating(&self, name: &str, variants: Vec<FakeVariant>) {
        self.add_endpoint(name, variants);
        self.state.creating.lock().unwrap().insert(name.into(), 0);
    }

    /// `up` instances of each variant of endpoint `name`, being created, are up.
    pub fn creating_instances_up(&self, name: &str, up: u32) {
        self.state.creating.lock().unwrap().insert(name.into(), up);
    }

    /// Endpoint `name`'s creation is done: it is `InService`.
    pub fn finish_creating(&self, name: &str) {
        self.state.creating.lock().unwrap().remove(name);
    }

    pub fn remove_endpoint(&self, name: &str) {
        self.state.endpoints.lock().unwrap().remove(name);
    }

    pub fn set_instance_count(&self, endpoint: &str, variant: &str, count: u32) {
        let mut endpoints = self.state.endpoints.lock().unwrap();
        for v in endpoints.get_mut(endpoint).unwrap() {
            if v.name == variant {
                v.instance_count = count;
            }
        }
    }

    /// Adds an inference component to `endpoint`.
    pub fn add_component(&self, endpoint: &str, mut component: FakeComponent) {
        component.endpoint = endpoint.into();
        self.state.components.lock().unwrap().push(component);
    }

    /// Sets the copies a component runs (as its autoscaling would).
    pub fn set_copies(&self, component: &str, copies: u32) {
        for c in self.state.components.lock().unwrap().iter_mut() {
            if c.name == component {
                c.copies = copies;
            }
        }
    }

    /// Calls to the inference-component APIs so far.
    pub fn component_calls(&self) -> u64 {
        self.state.component_calls.load(Ordering::SeqCst)
    }

    /// Invocations fail with `status` and error type `kind`, their message `message`.
    pub fn fail_invocations(&self, status: u16, kind: &str, message: &str) {
        *self.state.invoke_error.lock().unwrap() = Some((status, kind.into()));
        *self.state.invoke_error_message.lock().unwrap() = Some(message.into());
    }

    /// The access key ids the requests so far were signed with, in order.
    pub fn access_key_ids(&self) -> Vec<String> {
        self.state
            .credentials
            .lock()
            .unwrap()
            .iter()
            .map(|c| c.split('/').next().unwrap_or_default().to_owned())
            .collect()
    }

    pub fn set_response_body(&self, body: &[u8]) {
        *self.state.response_body.lock().unwrap() = body.to_vec();
    }

    /// The next invocations answer these bodies, in order (then the usual one).
    pub fn next_response_bodies(&self, bodies: &[&[u8]]) {
        let mut next = self.state.next_bodies.lock().unwrap();
        next.extend(bodies.iter().map(|b| b.to_vec()));
    }

    /// Invocations answer with this `Content-Type`.
    pub fn set_response_content_type(&self, content_type: &str) {
        *self.state.response_content_type.lock().unwrap() = Some(content_type.to_owned());
    }

    /// The next invocations to answer take these latencies, in order.
    pub fn next_latencies(&self, latencies: &[Duration]) {
        self.state
            .next_latencies
            .lock()
            .unwrap()
            .extend(latencies.iter().copied());
    }

    /// Invocations wait until [`release`](Self::release).
    pub fn hold(&self) {
        self.state.hold.store(true, Ordering::SeqCst);
    }

    /// Lets held invocations answer.
    pub fn release(&self) {
        self.state.hold.store(false, Ordering::SeqCst);
        self.state.released.notify_waiters();
    }

    /// The next `n` invocations answer 400 `ThrottlingException` (before the model).
    pub fn throttle_next(&self, n: u64) {
        self.state.throttle_next.store(n, Ordering::SeqCst);
    }

    /// Waits (up to 10 s) until `n` invocations have arrived.
    pub async fn wait_for_invocations(&self, n: u64) {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while self.invocations() < n {
            assert!(
                std::time::Instant::now() < deadline,
                "only {} of {n} invocations arrived",
                self.invocations()
            );
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    pub fn invocations(&self) -> u64 {
        self.state.invocations.load(Ordering::SeqCst)
    }

    /// Every request received so far, whatever its path.
    pub fn requests(&self) -> u64 {
        self.state.requests.load(Ordering::SeqCst)
    }

    /// The most control-plane requests the fake was answering at once.
    pub fn control_plane_most_at_once(&self) -> u64 {
        self.state.control_plane_most_at_once.load(Ordering::SeqCst)
    }

    pub fn describe_calls(&self) -> u64 {
        self.state.describe_calls.load(Ordering::SeqCst)
    }

    /// SDK config pointing every service at the fake.
    pub async fn sdk_config(&self) -> aws_types::SdkConfig {
        aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new("us-east-1"))
            .credentials_provider(aws_credential_types::Credentials::new(
                "test", "test", None, None, "fake",
            ))
            .endpoint_url(&self.url)
            .load()
            .await
    }
}

async fn control_plane(
    State(state): State<Arc<FakeState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    record_credential(&state, &headers);
    struct Answering<'a>(&'a AtomicU64);
    impl Drop for Answering<'_> {
        fn drop(&mut self) {
            self.0.fetch_sub(1, Ordering::SeqCst);
        }
    }
    let at_once = state.control_plane_in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    let _answering = Answering(&state.control_plane_in_flight);
    state
        .control_plane_most_at_once
        .fetch_max(at_once, Ordering::SeqCst);
    let delay = *state.control_plane_delay.lock().unwrap();
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let target = headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let request: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    match target.as_str() {
        "SageMaker.DescribeEndpoint" => {
            state.describe_calls.fetch_add(1, Ordering::SeqCst);
            if let Some(code) = state.describe_error.lock().unwrap().clone() {
                return aws_json_error(
                    &code,
                    "User: test is not authorized to perform: sagemaker:DescribeEndpoint",
                );
            }
            let name = request["EndpointName"].as_str().unwrap_or_default();
            let endpoints = state.endpoints.lock().unwrap();
            let Some(variants) = endpoints.get(name) else {
                return aws_json_error(
                    "ValidationException",
                    &format!("Could not find endpoint \"{name}\"."),
                );
            };
            let summaries: Vec<_> = variants
                .iter()
                .map(|v| match v.serverless_memory_mb {
                    Some(mb) => {
                        let mut cfg = json!({"MemorySizeInMB": mb, "MaxConcurrency": 5});
                        if let Some(pc) = v.provisioned_concurrency {
                            cfg["ProvisionedConcurrency"] = json!(pc);
                        }
                        json!({"VariantName": v.name, "CurrentServerlessConfig": cfg})
                    }
                    None => json!({
                        "VariantName": v.name,
                        "CurrentInstanceCount": v.instance_count,
                        "DesiredInstanceCount": v.instance_count,
                        "CurrentWeight": 1.0
                    }),
                })
                .collect();
            let mut answer = json!({
                "EndpointName": name,
                "EndpointArn": format!("arn:aws:sagemaker:us-east-1:123456789012:endpoint/{name}"),
                "EndpointConfigName": format!("{name}-config"),
                "EndpointStatus": "InService",
                "CreationTime": 1.7e9,
                "LastModifiedTime": 1.7e9,
                "ProductionVariants": summaries
            });
            if let Some(new_fleet) = state.deployments.lock().unwrap().get(name) {
                let pending: Vec<_> = new_fleet
                    .iter()
                    .map(|v| {
                        json!({
                            "VariantName": v.name,
                            "InstanceType": v.instance_type,
                            "CurrentInstanceCount": v.instance_count,
                            "DesiredInstanceCount": v.instance_count,
                            "CurrentWeight": 1.0
                        })
                    })
                    .collect();
                answer["EndpointStatus"] = json!("Updating");
                answer["PendingDeploymentSummary"] = json!({
                    "EndpointConfigName": format!("{name}-green-config"),
                    "ProductionVariants": pending,
                    "StartTime": 1.7e9
                });
            }
            if let Some(&up) = state.creating.lock().unwrap().get(name) {
                let pending: Vec<_> = variants
                    .iter()
                    .map(|v| {
                        json!({
                            "VariantName": v.name,
                            "InstanceType": v.instance_type,
                            "CurrentInstanceCount": up.min(v.instance_count),
                            "DesiredInstanceCount": v.instance_count
                        })
                    })
                    .collect();
                answer["EndpointStatus"] = json!("Creating");
                answer.as_object_mut().unwrap().remove("ProductionVariants");
                answer["PendingDeploymentSummary"] = json!({
                    "EndpointConfigName": format!("{name}-config"),
                    "ProductionVariants": pending,
                    "StartTime": 1.7e9
                });
            }
            aws_json(answer)
        }
        "SageMaker.DescribeEndpointConfig" => {
            let config = request["EndpointConfigName"].as_str().unwrap_or_default();
            let (name, green) = match config.strip_suffix("-green-config") {
                Some(name) => (name, true),
                None => (config.trim_end_matches("-config"), false),
            };
            if green && let Some(code) = state.deployment_config_error.lock().unwrap().clone() {
                return aws_json_error(&code, "not allowed");
            }
            let endpoints = if green {
                state.deployments.lock().unwrap()
            } else {
                state.endpoints.lock().unwrap()
            };
            let Some(variants) = endpoints.get(name) else {
                return aws_json_error(
                    "ValidationException",
                    &format!("Could not find endpoint configuration \"{config}\"."),
                );
            };
            let configured: Vec<_> = variants
                .iter()
                .map(|v| match (&v.instance_type, v.serverless_memory_mb) {
                    (_, Some(mb)) => json!({"VariantName": v.name, "ModelName": "m",
                        "ServerlessConfig": {"MemorySizeInMB": mb, "MaxConcurrency": 5}}),
                    (Some(t), None) if !v.has_model => json!({"VariantName": v.name,
                        "InstanceType": t, "InitialInstanceCount": 1,
                        "RoutingConfig": {"RoutingStrategy": "LEAST_OUTSTANDING_REQUESTS"}}),
                    (Some(t), None) => json!({"VariantName": v.name, "ModelName": "m",
                        "InstanceType": t, "InitialInstanceCount": 1}),
                    (None, None) => json!({"VariantName": v.name, "ModelName": "m"}),
                })
                .zip(variants)
                .map(|(mut configured, v)| {
                    if let Some(gb) = v.volume_gb {
                        configured["VolumeSizeInGB"] = json!(gb);
                    }
                    configured
                })
                .collect();
            aws_json(json!({
                "EndpointConfigName": config,
                "EndpointConfigArn": format!("arn:aws:sagemaker:us-east-1:123456789012:endpoint-config/{config}"),
                "CreationTime": 1.7e9,
                "ProductionVariants": configured
            }))
        }
        "SageMaker.ListInferenceComponents" => {
            state.component_calls.fetch_add(1, Ordering::SeqCst);
            let endpoint = request["EndpointNameEquals"].as_str();
            let components = state.components.lock().unwrap();
            let matching: Vec<&FakeComponent> = components
                .iter()
                .filter(|c| endpoint.is_none_or(|e| e == c.endpoint))
                .collect();
            // One component a page, to exercise NextToken.
            let start: usize = request["NextToken"]
                .as_str()
                .and_then(|t| t.parse().ok())
                .unwrap_or(0);
            let page: Vec<_> = matching
                .iter()
                .skip(start)
                .take(1)
                .map(|c| json!({
                    "InferenceComponentName": c.name,
                    "InferenceComponentArn": format!("arn:aws:sagemaker:us-east-1:123456789012:inference-component/{}", c.name),
                    "EndpointName": c.endpoint,
                    "EndpointArn": format!("arn:aws:sagemaker:us-east-1:123456789012:endpoint/{}", c.endpoint),
                    "VariantName": c.variant,
                    "InferenceComponentStatus": "InService",
                    "CreationTime": 1.7e9,
                    "LastModifiedTime": 1.7e9
                }))
                .collect();
            let mut answer = json!({ "InferenceComponents": page });
            if start + 1 < matching.len() {
                answer["NextToken"] = json!((start + 1).to_string());
            }
            aws_json(answer)
        }
        "SageMaker.DescribeInferenceComponent" => {
            state.component_calls.fetch_add(1, Ordering::SeqCst);
            let name = request["InferenceComponentName"]
                .as_str()
                .unwrap_or_default();
            let components = state.components.lock().unwrap();
            let Some(c) = components.iter().find(|c| c.name == name && !c.vanishes) else {
                return aws_json_error(
                    "ValidationException",
                    &format!("Could not find inference component \"{name}\"."),
                );
            };
            let mut requirements = json!({});
            if let Some(n) = c.accelerators {
                requirements["NumberOfAcceleratorDevicesRequired"] = json!(n);
            }
            if let Some(n) = c.cpu_cores {
                requirements["NumberOfCpuCoresRequired"] = json!(n);
            }
            if let Some(n) = c.memory_mb {
                requirements["MinMemoryRequiredInMb"] = json!(n);
            }
            let mut answer = json!({
                "InferenceComponentName": c.name,
                "InferenceComponentArn": format!("arn:aws:sagemaker:us-east-1:123456789012:inference-component/{}", c.name),
                "EndpointName": c.endpoint,
                "EndpointArn": format!("arn:aws:sagemaker:us-east-1:123456789012:endpoint/{}", c.endpoint),
                "Specification": {
                    "ModelName": format!("{}-model", c.name),
                    "ComputeResourceRequirements": requirements
                },
                "RuntimeConfig": { "DesiredCopyCount": c.copies, "CurrentCopyCount": c.copies },
                "InferenceComponentStatus": "InService",
                "CreationTime": 1.7e9,
                "LastModifiedTime": 1.7e9
            });
            if !c.variant.is_empty() {
                answer["VariantName"] = json!(c.variant);
            }
            if let Some(base) = &c.base {
                // An adapter: the base's model and compute, nothing of its own.
                answer["Specification"] = json!({
                    "BaseInferenceComponentName": base,
                    "Container": { "ArtifactUrl": format!("s3://adapters/{}", c.name) }
                });
                answer.as_object_mut().unwrap().remove("RuntimeConfig");
            }
            if !c.deployed {
                answer["RuntimeConfig"] = json!({ "DesiredCopyCount": c.copies });
                answer["InferenceComponentStatus"] = json!("Creating");
            }
            aws_json(answer)
        }
        other => aws_json_error(
            "UnknownOperationException",
            &format!("unknown target {other}"),
        ),
    }
}

/// `InvokeEndpointAsync`: queued (202), with where the output will land; held
/// while invocations are (see [`FakeSageMaker::hold`]). The inline body is read
/// first, as SageMaker reads it: answered with its body unread, the connection was
/// closed after the answer, sometimes after its head had gone out without
/// `Connection: close`, and the client's next request on it failed unseen.
async fn invoke_async(
    State(state): State<Arc<FakeState>>,
    Path(name): Path<String>,
    _body: Bytes,
) -> Response {
    // A request id of its own for each, as SageMaker answers every request.
    static ASYNC_REQUESTS: AtomicU64 = AtomicU64::new(0);
    let number = ASYNC_REQUESTS.fetch_add(1, Ordering::Relaxed) + 1;
    state.async_submissions.fetch_add(1, Ordering::SeqCst);
    loop {
        let released = state.released.notified();
        if !state.hold.load(Ordering::SeqCst) {
            break;
        }
        released.await;
    }
    let mut response = (
        StatusCode::ACCEPTED,
        json!({"InferenceId": format!("{name}-inference-1")}).to_string(),
    )
        .into_response();
    response.headers_mut().insert(
        "x-amzn-RequestId",
        HeaderValue::from_str(&format!("async-req-{number}")).unwrap(),
    );
    response.headers_mut().insert(
        "x-amzn-sagemaker-outputlocation",
        HeaderValue::from_static("s3://fake-bucket/output/1.out"),
    );
    response
}

async fn invoke(
    State(state): State<Arc<FakeState>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let number = state.invocations.fetch_add(1, Ordering::SeqCst) + 1;
    record_credential(&state, &headers);
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    state.invoked.lock().unwrap().push((
        header("x-amzn-sagemaker-inference-component"),
        header("x-amzn-sagemaker-target-model"),
    ));
    state.received_bodies.lock().unwrap().push(body.to_vec());
    let throttled = state
        .throttle_next
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok();
    if throttled {
        let delay = *state.throttle_latency.lock().unwrap();
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        let mut response = (
            StatusCode::BAD_REQUEST,
            json!({"message": "Rate exceeded"}).to_string(),
        )
            .into_response();
        response.headers_mut().insert(
            "x-amzn-ErrorType",
            HeaderValue::from_static("ThrottlingException"),
        );
        return response;
    }
    loop {
        let released = state.released.notified();
        if !state.hold.load(Ordering::SeqCst) {
            break;
        }
        released.await;
    }
    let next = state.next_latencies.lock().unwrap().pop_front();
    let latency = next.unwrap_or_else(|| *state.latency.lock().unwrap());
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    if let Some((status, kind)) = state.invoke_error.lock().unwrap().clone() {
        let message = state.invoke_error_message.lock().unwrap().clone();
        let mut error = json!({
            "message": message.clone().unwrap_or_else(|| format!("{kind} from the fake")),
            "OriginalStatusCode": 500
        });
        if let Some(message) = message.filter(|_| kind == "ModelError") {
            error["OriginalMessage"] = json!(message);
            error["LogStreamArn"] = json!(
                "arn:aws:logs:us-east-1:123456789012:log-group:/aws/sagemaker/Endpoints/fake"
            );
        }
        let mut response =
            (StatusCode::from_u16(status).unwrap(), error.to_string()).into_response();
        response
            .headers_mut()
            .insert("x-amzn-ErrorType", HeaderValue::from_str(&kind).unwrap());
        response
            .headers_mut()
            .insert("x-amzn-RequestId", HeaderValue::from_static("req-error-1"));
        return response;
    }
    let endpoints = state.endpoints.lock().unwrap();
    if !endpoints.contains_key(&name) {
        return validation_error(format!(
            "Endpoint {name} of account 123456789012 not found."
        ));
    }
    if state.creating.lock().unwrap().contains_key(&name) {
        // Not in service yet: SageMaker refuses the call.
        return validation_error(format!(
            "Endpoint {name} is not in service (fake: Creating)."
        ));
    }
    let variant = headers
        .get("x-amzn-sagemaker-target-variant")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .or_else(|| {
            endpoints
                .get(&name)
                .and_then(|v| v.first())
                .map(|v| v.name.clone())
        });
    drop(endpoints);
    let body = state.next_bodies.lock().unwrap().pop_front();
    let body = body.unwrap_or_else(|| state.response_body.lock().unwrap().clone());
    let mut response = (StatusCode::OK, body).into_response();
    let h = response.headers_mut();
    let content_type = state.response_content_type.lock().unwrap().clone();
    h.insert(
        "content-type",
        HeaderValue::from_str(content_type.as_deref().unwrap_or("application/json")).unwrap(),
    );
    h.insert(
        "x-amzn-RequestId",
        HeaderValue::from_str(&format!("req-{number}")).unwrap(),
    );
    if let Some(v) = variant {
        h.insert(
            "x-Amzn-Invoked-Production-Variant",
            HeaderValue::from_str(&v).unwrap(),
        );
    }
    response
}

/// Counts every request, before routing: one to a path the fake does not serve
/// (a response stream) too.
async fn count_request(
    State(state): State<Arc<FakeState>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    state.requests.fetch_add(1, Ordering::SeqCst);
    next.run(request).await
}

/// Keeps the `Credential=` of the request's SigV4 `Authorization` header.
fn record_credential(state: &FakeState, headers: &HeaderMap) {
    let credential = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split("Credential=").nth(1))
        .map(|rest| rest.split(',').next().unwrap_or_default().to_owned());
    if let Some(credential) = credential {
        state.credentials.lock().unwrap().push(credential);
    }
}

fn aws_json(body: serde_json::Value) -> Response {
    let mut r = (StatusCode::OK, body.to_string()).into_response();
    r.headers_mut().insert(
        "content-type",
        HeaderValue::from_static("application/x-amz-json-1.1"),
    );
    r
}

fn aws_json_error(code: &str, message: &str) -> Response {
    let mut r = (
        StatusCode::BAD_REQUEST,
        json!({"__type": code, "message": message}).to_string(),
    )
        .into_response();
    r.headers_mut().insert(
        "content-type",
        HeaderValue::from_static("application/x-amz-json-1.1"),
    );
    r
}

/// A `ValidationError` answer (HTTP 400) saying `message`, as SageMaker Runtime
/// gives one.
fn validation_error(message: String) -> Response {
    let mut response = (
        StatusCode::BAD_REQUEST,
        json!({"message": message}).to_string(),
    )
        .into_response();
    response.headers_mut().insert(
        "x-amzn-ErrorType",
        HeaderValue::from_static("ValidationError"),
    );
    response
}
