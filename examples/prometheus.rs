//! sagemeter's metrics, exposed to Prometheus.
//!
//! ```text
//! cargo run --example prometheus                 # no AWS, no emulator needed
//! curl -s localhost:9000/metrics | grep sagemeter_   # while it serves (SERVE_SECS)
//! ```
//!
//! Without `AWS_ENDPOINT_URL`, the calls go to the in-process fake SageMaker the
//! tests use (`tests/support/fake_sagemaker.rs`), started on a loopback port.
//! With it they go to the local emulator seeded by `localstack/up.sh` (endpoint
//! `demo-realtime`, `ml.m5.xlarge` × 2); the SDK signs its calls, so it needs a
//! region (`us-east-1` when none is configured) and credentials, any will do:
//!
//! ```text
//! bash localstack/up.sh
//! AWS_ENDPOINT_URL=http://127.0.0.1:4566 AWS_REGION=us-east-1 \
//!   AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test \
//!   cargo run --example prometheus
//! bash localstack/down.sh
//! ```
//! Either way the price is a fixed override and the endpoint's deployment is
//! stated (no Price List, no discovery), so the figures are reproducible.
//!
//! Environment: `PROMETHEUS_LISTEN` (default `127.0.0.1:9000`), `SERVE_SECS` (how
//! long to keep serving `/metrics` after the calls, default 0), `CALLS` (default 20).
//!
//! The application picks the exporter: sagemeter only talks to the `metrics`
//! facade. Tag keys listed in `metric_tag_labels` become labels (here `team`);
//! keep such keys to a few fixed values.

// The tests' fake; `pub` because this example uses only part of it (public items
// are not reported as dead code).
#[path = "../tests/support/fake_sagemaker.rs"]
pub mod fake_sagemaker;

use aws_sdk_sagemakerruntime::primitives::Blob;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};
use sagemeter::endpoint::{EndpointProfile, VariantProfile};
use sagemeter::pricing::PriceKey;
use std::net::SocketAddr;
use std::time::Duration;

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // 1. The exporter: a recorder for the facade plus an HTTP listener for scrapes.
    let listen: SocketAddr = env_or("PROMETHEUS_LISTEN", "127.0.0.1:9000".parse()?);
    let (recorder, exporter) = PrometheusBuilder::new()
        .with_http_listener(listen)
        // Histograms as Prometheus histograms (default: summaries).
        .set_buckets_for_metric(
            Matcher::Full("sagemeter_latency_seconds".into()),
            &[
                0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
            ],
        )?
        .set_buckets_for_metric(
            Matcher::Full("sagemeter_cost_usd".into()),
            &[1e-7, 1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1],
        )?
        .build()?;
    let handle = recorder.handle();
    metrics::set_global_recorder(recorder)?;
    tokio::spawn(exporter);

    // 2. Where the calls go: the emulator if AWS_ENDPOINT_URL is set, else the fake.
    let (sdk_config, endpoint, _fake) = match std::env::var("AWS_ENDPOINT_URL") {
        Ok(_) => (
            aws_config::load_from_env().await,
            "demo-realtime".to_owned(),
            None,
        ),
        Err(_) => {
            let fake = fake_sagemaker::FakeSageMaker::start().await;
            fake.add_endpoint(
                "demo-realtime",
                vec![fake_sagemaker::FakeVariant::instance(
                    "AllTraffic",
                    "ml.m5.xlarge",
                    2,
                )],
            );
            (
                fake.sdk_config().await,
                "demo-realtime".to_owned(),
                Some(fake),
            )
        }
    };
    let region = sdk_config
        .region()
        .map_or("us-east-1".to_owned(), |r| r.to_string());

    // 3. The metered client (built after the recorder, so the metrics are described).
    let client = sagemeter::Client::builder(&sdk_config)
        // The calls' region and the prices' (the SDK config may have none).
        .region(&region)
        .without_discovery()
        .endpoint_profile(EndpointProfile::new(
            endpoint.clone(),
            vec![VariantProfile::instance("AllTraffic", "ml.m5.xlarge", 2)],
        ))
        .price_override(PriceKey::hosting(&region, "ml.m5.xlarge"), "0.23".parse()?)
        .price_override(
            PriceKey::DataIn {
                region: region.clone(),
            },
            "0.016".parse()?,
        )
        .price_override(
            PriceKey::DataOut {
                region: region.clone(),
            },
            "0.016".parse()?,
        )
        .metric_tag_labels(["team"])
        .default_tag("team", "search")
        .build()?;

    let calls: u32 = env_or("CALLS", 20);
    for i in 0..calls {
        let mut request = client
            .invoke_endpoint()
            .endpoint_name(&endpoint)
            .content_type("application/json")
            .body(Blob::new(format!(r#"{{"inputs":"request {i}"}}"#)));
        if i % 4 == 0 {
            request = request.tag("team", "ads");
        }
        let response = request.send().await?;
        if i == 0 {
            println!("first receipt: {}", response.cost());
        }
    }
    println!(
        "total: ${} for {calls} calls\n",
        client.meter().totals().client_usd
    );

    // 4. What a scrape sees.
    for line in handle.render().lines() {
        if line.starts_with("sagemeter_") || line.starts_with("# HELP sagemeter_") {
            println!("{line}");
        }
    }
    let serve = Duration::from_secs(env_or("SERVE_SECS", 0));
    if !serve.is_zero() {
        println!("\nserving http://{listen}/metrics for {serve:?}");
        tokio::time::sleep(serve).await;
    }
    Ok(())
}
