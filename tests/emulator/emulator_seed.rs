//! The local AWS emulator harness and the demo seeding, checked through the real SDK:
//! the two demo endpoints have the advertised shapes, seeding is idempotent, and
//! InvokeEndpoint answers with OpenAI-style chat completions carrying a `usage` object.
//! Also pins down the moto behaviours the client code has to live with.
//!
//! Run: `cargo test --test emulator emulator_seed::` (needs python3 and PyPI on first run).

use crate::support::emulator::{Emulator, REALTIME_ENDPOINT, SERVERLESS_ENDPOINT, VARIANT};
use aws_sdk_sagemaker::error::ProvideErrorMetadata;
use aws_sdk_sagemakerruntime::primitives::Blob;
use serde_json::Value;

fn usage_of(body: &[u8]) -> (u64, u64, u64) {
    let doc: Value = serde_json::from_slice(body)
        .unwrap_or_else(|e| panic!("body is not JSON ({e}): {}", String::from_utf8_lossy(body)));
    assert_eq!(doc["object"], "chat.completion", "body: {doc}");
    assert!(
        doc["choices"][0]["message"]["content"].is_string(),
        "body: {doc}"
    );
    let usage = &doc["usage"];
    let n = |k: &str| {
        usage[k]
            .as_u64()
            .unwrap_or_else(|| panic!("usage.{k} missing or not a number: {doc}"))
    };
    let (p, c, t) = (
        n("prompt_tokens"),
        n("completion_tokens"),
        n("total_tokens"),
    );
    assert_eq!(p + c, t, "total_tokens = prompt + completion: {doc}");
    assert!(p > 0 && c > 0, "{doc}");
    (p, c, t)
}

async fn assert_demo_endpoints(sm: &aws_sdk_sagemaker::Client) {
    // Real-time: one variant on ml.m5.xlarge x 2.
    let ep = sm
        .describe_endpoint()
        .endpoint_name(REALTIME_ENDPOINT)
        .send()
        .await
        .expect("DescribeEndpoint demo-realtime");
    assert_eq!(ep.endpoint_status().map(|s| s.as_str()), Some("InService"));
    let variants = ep.production_variants();
    assert_eq!(variants.len(), 1, "{ep:?}");
    assert_eq!(variants[0].variant_name(), Some(VARIANT));
    assert_eq!(variants[0].current_instance_count(), Some(2));
    assert_eq!(variants[0].desired_instance_count(), Some(2));
    assert!(variants[0].current_serverless_config().is_none());
    let cfg = sm
        .describe_endpoint_config()
        .endpoint_config_name(ep.endpoint_config_name().expect("EndpointConfigName"))
        .send()
        .await
        .expect("DescribeEndpointConfig demo-realtime");
    let variants = cfg.production_variants();
    assert_eq!(variants.len(), 1, "{cfg:?}");
    assert_eq!(variants[0].variant_name(), Some(VARIANT));
    assert_eq!(
        variants[0].instance_type().map(|t| t.as_str()),
        Some("ml.m5.xlarge")
    );
    assert_eq!(variants[0].initial_instance_count(), Some(2));
    assert!(variants[0].serverless_config().is_none());

    // Serverless: one variant, 3072 MB, max concurrency 5; moto reports it on the
    // endpoint (CurrentServerlessConfig) as well as on the config (ServerlessConfig).
    let ep = sm
        .describe_endpoint()
        .endpoint_name(SERVERLESS_ENDPOINT)
        .send()
        .await
        .expect("DescribeEndpoint demo-serverless");
    assert_eq!(ep.endpoint_status().map(|s| s.as_str()), Some("InService"));
    let variants = ep.production_variants();
    assert_eq!(variants.len(), 1, "{ep:?}");
    assert_eq!(variants[0].variant_name(), Some(VARIANT));
    assert_eq!(variants[0].current_instance_count(), None);
    let current = variants[0]
        .current_serverless_config()
        .expect("CurrentServerlessConfig on the serverless endpoint");
    assert_eq!(current.memory_size_in_mb(), Some(3072));
    assert_eq!(current.max_concurrency(), Some(5));
    let cfg = sm
        .describe_endpoint_config()
        .endpoint_config_name(ep.endpoint_config_name().expect("EndpointConfigName"))
        .send()
        .await
        .expect("DescribeEndpointConfig demo-serverless");
    let variants = cfg.production_variants();
    assert_eq!(variants.len(), 1, "{cfg:?}");
    assert!(variants[0].instance_type().is_none());
    let sc = variants[0]
        .serverless_config()
        .expect("ServerlessConfig on the config");
    assert_eq!(sc.memory_size_in_mb(), Some(3072));
    assert_eq!(sc.max_concurrency(), Some(5));
}

async fn names(sm: &aws_sdk_sagemaker::Client) -> (Vec<String>, Vec<String>, Vec<String>) {
    let mut eps: Vec<String> = sm
        .list_endpoints()
        .send()
        .await
        .expect("ListEndpoints")
        .endpoints()
        .iter()
        .filter_map(|e| e.endpoint_name().map(str::to_owned))
        .collect();
    let mut cfgs: Vec<String> = sm
        .list_endpoint_configs()
        .send()
        .await
        .expect("ListEndpointConfigs")
        .endpoint_configs()
        .iter()
        .filter_map(|e| e.endpoint_config_name().map(str::to_owned))
        .collect();
    let mut models: Vec<String> = sm
        .list_models()
        .send()
        .await
        .expect("ListModels")
        .models()
        .iter()
        .filter_map(|m| m.model_name().map(str::to_owned))
        .collect();
    eps.sort();
    cfgs.sort();
    models.sort();
    (eps, cfgs, models)
}

#[tokio::test]
async fn demo_endpoints_have_the_advertised_shapes() {
    let emu = Emulator::shared();
    let sm = aws_sdk_sagemaker::Client::new(&emu.sdk_config().await);
    assert_demo_endpoints(&sm).await;
}

#[tokio::test]
async fn seeding_twice_is_idempotent() {
    // Own server: this test counts resources.
    let emu = Emulator::start();
    let sm = aws_sdk_sagemaker::Client::new(&emu.sdk_config().await);
    let before = names(&sm).await;
    assert_eq!(before.0, ["demo-idle", "demo-realtime", "demo-serverless"]);
    assert_eq!(
        before.1,
        [
            "demo-idle-config",
            "demo-realtime-config",
            "demo-serverless-config"
        ]
    );
    assert_eq!(before.2, ["sagemeter-demo-model"]);

    let summary = emu.seed();
    assert!(
        summary.contains("demo-realtime") && summary.contains("demo-serverless"),
        "{summary}"
    );
    assert_eq!(names(&sm).await, before);
    assert_demo_endpoints(&sm).await;

    // And the runtime still answers after the re-seed.
    let rt = aws_sdk_sagemakerruntime::Client::new(&emu.sdk_config().await);
    let out = rt
        .invoke_endpoint()
        .endpoint_name(REALTIME_ENDPOINT)
        .content_type("application/json")
        .body(Blob::new(
            r#"{"messages":[{"role":"user","content":"again"}]}"#,
        ))
        .send()
        .await
        .expect("InvokeEndpoint after re-seed");
    usage_of(out.body().expect("body").as_ref());
}

#[tokio::test]
async fn invoke_endpoint_returns_canned_chat_completions_with_usage() {
    let emu = Emulator::shared();
    let rt = aws_sdk_sagemakerruntime::Client::new(&emu.sdk_config().await);
    for endpoint in [REALTIME_ENDPOINT, SERVERLESS_ENDPOINT] {
        let out = rt
            .invoke_endpoint()
            .endpoint_name(endpoint)
            .content_type("application/json")
            .accept("application/json")
            .body(Blob::new(format!(
                r#"{{"messages":[{{"role":"user","content":"hello {endpoint}"}}],"max_tokens":64}}"#
            )))
            .send()
            .await
            .unwrap_or_else(|e| panic!("InvokeEndpoint {endpoint}: {e:?}"));
        assert_eq!(out.content_type(), Some("application/json"), "{endpoint}");
        assert_eq!(
            out.invoked_production_variant(),
            Some(VARIANT),
            "{endpoint}"
        );
        usage_of(out.body().expect("body").as_ref());
    }
}

#[tokio::test]
async fn hundreds_of_distinct_calls_keep_getting_answers() {
    let emu = Emulator::shared();
    let rt = aws_sdk_sagemakerruntime::Client::new(&emu.sdk_config().await);
    let mut tokens = 0;
    for i in 0..300 {
        let endpoint = if i % 2 == 0 {
            REALTIME_ENDPOINT
        } else {
            SERVERLESS_ENDPOINT
        };
        let out = rt
            .invoke_endpoint()
            .endpoint_name(endpoint)
            .content_type("application/json")
            .body(Blob::new(format!(r#"{{"inputs":"question {i}"}}"#)))
            .send()
            .await
            .unwrap_or_else(|e| panic!("call {i}: {e:?}"));
        tokens += usage_of(out.body().expect("body").as_ref()).2;
    }
    assert!(tokens > 300);
}

#[tokio::test]
async fn identical_requests_get_the_same_answer() {
    // moto memoises per (endpoint, body, Accept, X-Amzn-SageMaker-* headers).
    let emu = Emulator::shared();
    let rt = aws_sdk_sagemakerruntime::Client::new(&emu.sdk_config().await);
    let call = || async {
        rt.invoke_endpoint()
            .endpoint_name(REALTIME_ENDPOINT)
            .content_type("application/json")
            .body(Blob::new(r#"{"inputs":"the very same question"}"#))
            .send()
            .await
            .expect("InvokeEndpoint")
            .body()
            .expect("body")
            .clone()
            .into_inner()
    };
    assert_eq!(call().await, call().await);
}

#[tokio::test]
async fn moto_quirks_the_client_has_to_live_with() {
    let emu = Emulator::shared();
    let conf = emu.sdk_config().await;
    let sm = aws_sdk_sagemaker::Client::new(&conf);
    let rt = aws_sdk_sagemakerruntime::Client::new(&conf);

    // DescribeEndpoint on an unknown name: ValidationException "Could not find endpoint".
    let err = sm
        .describe_endpoint()
        .endpoint_name("no-such-endpoint")
        .send()
        .await
        .expect_err("DescribeEndpoint of an unknown endpoint must fail");
    let svc = err.as_service_error().expect("service error");
    assert_eq!(svc.code(), Some("ValidationException"));
    assert!(
        svc.message()
            .unwrap_or_default()
            .contains("Could not find endpoint"),
        "{svc:?}"
    );

    // InvokeEndpoint does NOT check that the endpoint exists: it answers from the queue.
    let out = rt
        .invoke_endpoint()
        .endpoint_name("no-such-endpoint")
        .body(Blob::new("{}"))
        .send()
        .await
        .expect("moto answers InvokeEndpoint for any name");
    usage_of(out.body().expect("body").as_ref());

    // InvokeEndpointAsync is served (no existence check either): output and failure
    // locations in moto's S3, the result JSON stored at the output location.
    for endpoint in [SERVERLESS_ENDPOINT, "no-such-endpoint"] {
        let out = rt
            .invoke_endpoint_async()
            .endpoint_name(endpoint)
            .input_location(format!("s3://sagemeter-demo-input/{endpoint}.json"))
            .send()
            .await
            .unwrap_or_else(|e| panic!("InvokeEndpointAsync {endpoint}: {e:?}"));
        assert!(
            !out.inference_id().unwrap_or_default().is_empty(),
            "{out:?}"
        );
        let output = out.output_location().expect("OutputLocation");
        assert!(
            output.starts_with("s3://sagemaker-output-") && output.ends_with("/response.json"),
            "{output}"
        );
        let failure = out.failure_location().expect("FailureLocation");
        assert!(failure.ends_with("/failure.json"), "{failure}");
    }
}

#[test]
fn dropping_the_emulator_stops_its_server() {
    let emu = Emulator::start_unseeded();
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], emu.port));
    assert!(std::net::TcpStream::connect(addr).is_ok());
    drop(emu);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while std::net::TcpStream::connect(addr).is_ok() {
        assert!(
            std::time::Instant::now() < deadline,
            "server on {addr} still answers after drop"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}
